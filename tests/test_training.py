"""The training loop: it learns, it resumes exactly, it never leaves a half-written checkpoint."""
import dataclasses

import pytest
import torch

from bierlib.data import ImageTensorDataset
from bierlib.losses import ContrastiveLoss
from bierlib.models import SmallConvNet
from bierlib.training import History, TrainConfig, embed, train
from bierlib.utils import atomic_torch_save


def toy_split(classes, per_class=8, size=16, seed=0):
    """Each class is a bright square at its own position, plus noise."""
    g = torch.Generator().manual_seed(seed)
    images, targets = [], []
    for t, c in enumerate(classes):
        r, col = divmod(c, 4)
        for _ in range(per_class):
            img = torch.randint(0, 60, (1, size, size), generator=g)
            img[0, r * 4:r * 4 + 4, col * 4:col * 4 + 4] = 255
            images.append(img)
            targets.append(t)
    return ImageTensorDataset(torch.stack(images).to(torch.uint8), targets,
                              [str(c) for c in classes])


TRAIN, TEST = toy_split(range(8)), toy_split(range(8, 16), seed=1)
CONFIG = TrainConfig(epochs=3, steps_per_epoch=4, classes_per_batch=4, images_per_class=4,
                     lr=3e-3, eval_ks=(1, 2), clustering=True)


def fresh_model():
    torch.manual_seed(0)
    return SmallConvNet(embedding_dim=8, widths=(8, 8, 16))


def test_train_records_history_and_learns():
    history = train(fresh_model(), ContrastiveLoss(), TRAIN, TEST, CONFIG, progress=False)
    assert isinstance(history, History) and len(history) == 4
    assert history["epoch"] == [0, 1, 2, 3]
    assert history["step"] == [0, 4, 8, 12]
    assert set(history.final) >= {"loss", "recall@1", "recall@2", "nmi", "f1", "map@r", "seconds"}
    losses = history["loss"][1:]
    assert losses[-1] < losses[0]
    with pytest.raises(KeyError, match="recall@1"):
        history["accuracy"]


def stop_after(epoch):
    def callback(record, model):
        if record["epoch"] == epoch:
            raise KeyboardInterrupt  # as if the user pressed stop
    return callback


def test_resume_after_interruption_ends_where_uninterrupted_run_ends(tmp_path):
    config = TrainConfig(**{**CONFIG.__dict__, "keep_embeddings": True})
    reference_model = fresh_model()
    reference = train(reference_model, ContrastiveLoss(), TRAIN, TEST, config, progress=False)

    model = fresh_model()
    with pytest.raises(KeyboardInterrupt):
        train(model, ContrastiveLoss(), TRAIN, TEST, config, checkpoint_dir=tmp_path,
              progress=False, callbacks=[stop_after(2)])
    resumed_model = fresh_model()
    resumed = train(resumed_model, ContrastiveLoss(), TRAIN, TEST, config,
                    checkpoint_dir=tmp_path, progress=False)
    for a, b in zip(reference_model.state_dict().values(), resumed_model.state_dict().values()):
        assert torch.equal(a, b)
    assert [r["loss"] for r in resumed.records][1:] == [r["loss"] for r in reference.records][1:]
    assert len(resumed.embeddings) == 4
    assert torch.equal(resumed.embeddings[-1], reference.embeddings[-1])


def test_finished_run_is_loaded_not_retrained_and_can_be_extended(tmp_path):
    first = train(fresh_model(), ContrastiveLoss(), TRAIN, TEST, CONFIG, checkpoint_dir=tmp_path,
                  progress=False)
    calls = []
    again_model = fresh_model()
    again = train(again_model, ContrastiveLoss(), TRAIN, TEST, CONFIG, checkpoint_dir=tmp_path,
                  progress=False, callbacks=[lambda r, m: calls.append(r)])
    assert calls == [] and again.records[1:] == first.records[1:]  # record 0 has loss NaN
    assert again["recall@1"] == first["recall@1"]
    emb, _ = embed(again_model, TEST, device="cpu")
    assert torch.isfinite(emb).all()
    longer = TrainConfig(**{**CONFIG.__dict__, "epochs": 4})
    extended = train(fresh_model(), ContrastiveLoss(), TRAIN, TEST, longer, checkpoint_dir=tmp_path,
                     progress=False)
    assert extended["epoch"] == [0, 1, 2, 3, 4]


def test_checkpoint_with_other_config_is_refused(tmp_path):
    train(fresh_model(), ContrastiveLoss(), TRAIN, TEST, CONFIG, checkpoint_dir=tmp_path,
          progress=False)
    other = TrainConfig(**{**CONFIG.__dict__, "lr": 1e-2})
    with pytest.raises(ValueError, match="different configuration.*'lr'"):
        train(fresh_model(), ContrastiveLoss(), TRAIN, TEST, other, checkpoint_dir=tmp_path,
              progress=False)


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    train(fresh_model(), ContrastiveLoss(), TRAIN, TEST, CONFIG, checkpoint_dir=tmp_path,
          progress=False)
    with pytest.raises(ValueError, match="another shape"):
        train(SmallConvNet(embedding_dim=8, widths=(4, 4, 8)), ContrastiveLoss(), TRAIN, TEST,
              CONFIG,
              checkpoint_dir=tmp_path, progress=False)


def test_atomic_save_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "last.pt"
    atomic_torch_save({"a": torch.ones(2)}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_torch_save({"a": Unpicklable()}, path)
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_bad_config_and_data():
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(lr=-1)
    with pytest.raises(ValueError, match="non-empty dataset with a `targets` attribute"):
        train(fresh_model(), ContrastiveLoss(), torch.utils.data.TensorDataset(torch.zeros(3)),
              TEST, CONFIG, progress=False)
    with pytest.raises(ValueError, match="uint8"):
        ImageTensorDataset(torch.zeros(2, 1, 4, 4), [0, 1], ["a", "b"])


def test_diverged_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    calls = []

    def diverging(embeddings, labels):
        calls.append(1)
        loss = ContrastiveLoss()(embeddings, labels)
        return loss * float("nan") if len(calls) > 6 else loss  # diverges in epoch 2

    with pytest.raises(FloatingPointError, match="epoch 2.*epoch 1 is kept"):
        train(fresh_model(), diverging, TRAIN, TEST, CONFIG, checkpoint_dir=tmp_path,
              progress=False)
    assert torch.load(tmp_path / "last.pt", weights_only=True)["epoch"] == 1


def test_annealed_learning_rate_and_l2_weight_decay(tmp_path):
    """``lr_anneal`` steps every group's rate down by ``lr_decay`` (as the step count passes
    each multiple) and resumes at the right rate; ``"l2-weights"`` decays only the weights of
    convolution and linear layers (see tests/test_official.py for the official equivalence)."""
    import dataclasses

    rates = []
    config = dataclasses.replace(CONFIG, lr_anneal=4, lr_decay=0.5,
                                 weight_decay_form="l2-weights")

    def record(embeddings, labels):
        rates.append(optimizers[-1].param_groups[0]["lr"])
        return ContrastiveLoss()(embeddings, labels)

    optimizers = []
    real = torch.optim.Adam

    def spy(*args, **kwargs):
        optimizers.append(real(*args, **kwargs))
        return optimizers[-1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.optim, "Adam", spy)
        train(fresh_model(), record, TRAIN, TEST, config, checkpoint_dir=tmp_path, progress=False)
        assert rates == [3e-3] * 4 + [1.5e-3] * 4 + [7.5e-4] * 4
        decays = {g["weight_decay"] for g in optimizers[-1].param_groups}
        assert decays == {2 * CONFIG.weight_decay, 0.0}
        rates.clear()
        train(fresh_model(), record, TRAIN, TEST, dataclasses.replace(config, epochs=4),
              checkpoint_dir=tmp_path, progress=False)  # extended: epoch 4 from the checkpoint
        assert rates == [3e-3 * 0.125] * 4
    with pytest.raises(ValueError, match="weight_decay_form must be one of"):
        TrainConfig(weight_decay_form="adamw")
    with pytest.raises(ValueError, match="lr_decay must lie in"):
        TrainConfig(lr_anneal=10, lr_decay=0.0)


VALIDATION = toy_split(range(12, 16), per_class=4, seed=2)
SELECT_ON_VALIDATION = dataclasses.replace(CONFIG, select_on="validation")


def test_validation_classes_are_evaluated_beside_the_test_classes(tmp_path):
    """``select_on="validation"`` records the validation metrics under ``val_`` keys at every
    evaluation, without changing training or the test metrics, and resumes exactly."""
    history = train(fresh_model(), ContrastiveLoss(), TRAIN, TEST, SELECT_ON_VALIDATION,
                    progress=False, validation_set=VALIDATION)
    assert all({"val_recall@1", "val_recall@2", "val_map@r", "val_nmi"} <= set(r)
               for r in history.records)
    val = history["val_recall@1"]
    assert history.chosen is history.records[val.index(max(val))]
    plain = train(fresh_model(), ContrastiveLoss(), TRAIN, TEST, CONFIG, progress=False)
    assert plain["recall@1"] == history["recall@1"] and plain["loss"][1:] == history["loss"][1:]
    with pytest.raises(KeyboardInterrupt):
        train(fresh_model(), ContrastiveLoss(), TRAIN, TEST, SELECT_ON_VALIDATION,
              checkpoint_dir=tmp_path, progress=False, validation_set=VALIDATION,
              callbacks=[stop_after(2)])
    resumed = train(fresh_model(), ContrastiveLoss(), TRAIN, TEST, SELECT_ON_VALIDATION,
                    checkpoint_dir=tmp_path, progress=False, validation_set=VALIDATION)
    assert resumed["val_recall@1"] == val and resumed["recall@1"] == history["recall@1"]
    assert [r["val_map@r"] for r in resumed.records] == history["val_map@r"]
    with pytest.raises(ValueError, match="different configuration.*'select_on'"):
        train(fresh_model(), ContrastiveLoss(), TRAIN, TEST, CONFIG, checkpoint_dir=tmp_path,
              progress=False)


def test_validation_set_and_select_on_go_together():
    with pytest.raises(ValueError, match="select_on='validation' needs a validation_set.*"
                                         "found select_on='validation' and validation_set=None"):
        train(fresh_model(), ContrastiveLoss(), TRAIN, TEST, SELECT_ON_VALIDATION,
              progress=False)
    with pytest.raises(ValueError, match="found select_on='test' and validation_set=a dataset"):
        train(fresh_model(), ContrastiveLoss(), TRAIN, TEST, CONFIG, progress=False,
              validation_set=VALIDATION)
    with pytest.raises(ValueError, match=r"select_on must be one of \('test', 'validation'\), "
                                         "found 'val'"):
        TrainConfig(select_on="val")


def test_chosen_is_the_validation_peak_and_oracle_the_test_peak():
    records = [{"step": 0, "recall@1": 0.5, "val_recall@1": 0.3},
               {"step": 1, "recall@1": 0.7, "val_recall@1": 0.6},
               {"step": 2, "recall@1": 0.6, "val_recall@1": 0.6},  # a tie: the earlier wins
               {"step": 3, "recall@1": 0.8, "val_recall@1": 0.4},
               {"step": 4, "recall@1": 0.8, "val_recall@1": 0.2}]
    history = History(records)
    assert history.chosen["step"] == 1
    assert history.oracle["step"] == 3  # also the earliest of a tie
    assert not hasattr(history, "best")
    with pytest.raises(ValueError, match=r"needs 'val_recall@1'.*found none in 2 records"):
        History([{"recall@1": 0.5}, {"recall@1": 0.6}]).chosen
