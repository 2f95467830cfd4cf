import numpy as np
import pytest
import torch

from bierlib.sampling import PKSampler, batch_labels_summary

LABELS = np.repeat(np.arange(10), [5, 5, 5, 5, 5, 5, 5, 5, 2, 9])


def test_every_batch_has_p_classes_of_k_images():
    sampler = PKSampler(LABELS, classes_per_batch=4, images_per_class=3, num_batches=50, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 50
    for batch in batches:
        labels = LABELS[batch]
        classes, counts = np.unique(labels, return_counts=True)
        assert len(classes) == 4 and (counts == 3).all()
        for c in classes:  # no repeated image unless the class has fewer than K images
            picked = np.array(batch)[labels == c]
            assert len(set(picked)) == 3 or (LABELS == c).sum() < 3


def test_deterministic_given_seed_and_epoch():
    a = PKSampler(LABELS, 4, 2, seed=3)
    b = PKSampler(LABELS, 4, 2, seed=3)
    assert list(a) == list(b)
    b.set_epoch(1)
    assert list(a) != list(b)
    assert list(PKSampler(LABELS, 4, 2, seed=4)) != list(a)


def test_all_classes_are_drawn():
    seen = {c for batch in PKSampler(LABELS, 4, 2, num_batches=100) for c in LABELS[batch]}
    assert seen == set(range(10))


def test_default_length_is_about_one_pass():
    assert len(PKSampler(LABELS, 4, 2)) == len(LABELS) // 8


def test_works_with_torch_dataloader():
    dataset = torch.utils.data.TensorDataset(torch.arange(len(LABELS)), torch.as_tensor(LABELS))
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=PKSampler(LABELS, 3, 2, 5))
    assert [len(x) for x, _ in loader] == [6] * 5


@pytest.mark.parametrize("kwargs,message", [
    ({"classes_per_batch": 11, "images_per_class": 2}, "only 10 classes"),
    ({"classes_per_batch": 0, "images_per_class": 2}, "positive integer"),
    ({"classes_per_batch": 2, "images_per_class": 2.5}, "positive integer"),
    ({"classes_per_batch": 2, "images_per_class": 2, "num_batches": 0}, "positive integer"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PKSampler(LABELS, **kwargs)


def test_bad_labels():
    with pytest.raises(ValueError, match="integer class ids"):
        PKSampler(LABELS.astype(float), 2, 2)
    with pytest.raises(ValueError, match="empty"):
        PKSampler(np.array([], dtype=int), 2, 2)


def test_batch_summary():
    assert batch_labels_summary(torch.tensor([0, 0, 1, 1, 1])) == {
        "classes": 2, "positive_pairs": 4, "negative_pairs": 6}
