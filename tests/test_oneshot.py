"""Omniglot's official 20-way one-shot task: fetching the runs, loading them and scoring."""
import importlib.util
import io
import shutil
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.spatial import cKDTree
from torch import nn

from bierlib.data import DatasetNotFoundError
from bierlib.oneshot import (OneShotRun, load_runs, nearest_neighbor_errors, one_shot_error,
                             raw_pixels)

from .conftest import REPO, SHARED_OMNIGLOT

spec = importlib.util.spec_from_file_location("fetch_omniglot",
                                              REPO / "data_scripts" / "fetch_omniglot.py")
fetch_omniglot = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fetch_omniglot)
needs_mirror = pytest.mark.skipif(not (SHARED_OMNIGLOT / "all_runs.zip").is_file(),
                                  reason="no ../shared/data/omniglot/all_runs.zip mirror")


def make_runs_zip(path, runs=1, labels_of=None):
    """An all_runs.zip of the official layout (fake PNG bytes): ``runs`` runs of 20 + 20."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for r in range(1, runs + 1):
            run = f"run{r:02d}"
            answers = labels_of(r) if labels_of else list(np.random.default_rng(r).permutation(20))
            lines = [f"{run}/test/item{q + 1:02d}.png {run}/training/class{a + 1:02d}.png"
                     for q, a in enumerate(answers)]
            zf.writestr(f"{run}/class_labels.txt", "\n".join(lines) + "\n")
            for i in range(1, 21):
                zf.writestr(f"{run}/test/item{i:02d}.png", b"png")
                zf.writestr(f"{run}/training/class{i:02d}.png", b"png")
    path.write_bytes(buffer.getvalue())
    return fetch_omniglot.fetchlib.file_hash(path)


@pytest.fixture(scope="module")
def real_root(tmp_path_factory):
    """The real runs, fetched from the offline mirror into a fresh data folder."""
    if not (SHARED_OMNIGLOT / "all_runs.zip").is_file():
        pytest.skip("no ../shared/data/omniglot/all_runs.zip mirror")
    root = tmp_path_factory.mktemp("data")
    fetch_omniglot.fetch_runs(root, SHARED_OMNIGLOT)
    return root


@needs_mirror
def test_runs_share_no_drawing_with_the_quick_profile(real_root, tmp_path):
    fetch_omniglot.fetch(tmp_path, SHARED_OMNIGLOT)  # the quick profile's 8 alphabets

    def pixels(folder):
        return {np.asarray(Image.open(f).convert("L")).tobytes() for f in folder.rglob("*.png")}

    quick, runs = pixels(tmp_path / "omniglot"), pixels(real_root / "omniglot_oneshot")
    assert (len(quick), len(runs)) == (4840, 800) and not quick & runs


def fake_runs(num_runs=3, size=8, seed=0):
    """Runs whose drawings carry their class in pixel (0, 0): class c has value 10 + c."""
    g = torch.Generator().manual_seed(seed)
    runs = []
    for r in range(num_runs):
        labels = torch.randperm(20, generator=g)
        train = torch.randint(0, 256, (20, 1, size, size), generator=g, dtype=torch.uint8)
        test = torch.randint(0, 256, (20, 1, size, size), generator=g, dtype=torch.uint8)
        train[:, 0, 0, 0] = 10 + torch.arange(20, dtype=torch.uint8)
        test[:, 0, 0, 0] = 10 + labels.to(torch.uint8)
        runs.append(OneShotRun(f"run{r + 1:02d}", train, test, labels))
    return runs


def one_hot_of_class(images):  # the perfect embedding: images float in [0, 1]
    return nn.functional.one_hot((images[:, 0, 0, 0] * 255).round().long() - 10, 20).float()


class OneHotModule(nn.Module):
    def forward(self, images):
        return one_hot_of_class(images)


def naive_errors(train, test, labels):
    errors = []
    for r in range(len(train)):
        wrong = 0
        for q in range(test.shape[1]):
            best, best_c = -np.inf, None
            for c in range(train.shape[1]):
                a, b = test[r, q].double(), train[r, c].double()
                cos = float(a @ b / (a.norm() * b.norm()))
                if cos > best:  # strictly greater: the first class wins ties
                    best, best_c = cos, c
            wrong += best_c != int(labels[r, q])
        errors.append(wrong / test.shape[1])
    return errors


def test_scorer_matches_naive_loop():
    g = torch.Generator().manual_seed(0)
    train, test = torch.randn(4, 6, 5, generator=g), torch.randn(4, 9, 5, generator=g)
    labels = torch.randint(0, 6, (4, 9), generator=g)
    errors = nearest_neighbor_errors(train, test, labels)
    assert errors.tolist() == pytest.approx(naive_errors(train, test, labels))
    # scale does not matter (cosine), and an exact copy of its class is always right
    assert torch.equal(nearest_neighbor_errors(3 * train, test, labels), errors)
    copies = torch.gather(train, 1, labels[..., None].expand(-1, -1, 5))
    assert nearest_neighbor_errors(train, copies, labels).tolist() == [0.0] * 4


@pytest.mark.parametrize("embedding", [one_hot_of_class, OneHotModule()],
                         ids=["function", "module"])
def test_perfect_embedding_makes_no_error(embedding):
    result = one_shot_error(embedding, fake_runs(), device="cpu")
    assert result.errors == (0.0, 0.0, 0.0) and result.mean == 0 and result.std == 0
    assert result.num_runs == 3


def test_constant_embedding_is_at_chance():
    # every similarity ties, the first training drawing wins: 1 of 20 right in every run
    result = one_shot_error(lambda x: torch.ones(len(x), 4), fake_runs())
    assert result.errors == pytest.approx([0.95] * 3) and result.std == pytest.approx(0, abs=1e-12)
    assert str(result) == "95.0% ± 0.0% error over 3 runs"


@needs_mirror
def test_fetch_is_idempotent_and_counts(real_root, capsys):
    fetch_omniglot.fetch_runs(real_root, SHARED_OMNIGLOT)
    assert "nothing to do" in capsys.readouterr().out
    assert "omniglot_oneshot" in [p.name for p in real_root.iterdir()]
    assert fetch_omniglot.check_runs(real_root / "omniglot_oneshot") == fetch_omniglot.RUNS_EXPECTED


@needs_mirror
def test_load_runs_on_the_real_data(real_root):
    runs = load_runs(real_root)
    assert [r.name for r in runs] == [f"run{i:02d}" for i in range(1, 21)]
    for run in runs:
        assert run.train_images.shape == run.test_images.shape == (20, 1, 28, 28)
        assert run.train_images.dtype == torch.uint8
        assert sorted(run.test_labels.tolist()) == list(range(20))  # a permutation
    # the quick profile's preprocessing: 8-bit grey, box-resized, inverted (strokes bright)
    with Image.open(real_root / "omniglot_oneshot/run03/training/class07.png") as im:
        expected = 255 - np.asarray(im.convert("L").resize((28, 28), Image.Resampling.BOX))
    assert np.array_equal(runs[2].train_images[6, 0].numpy(), expected)
    assert runs[0].test_images.float().mean() < 64  # mostly background after inversion
    line = (real_root / "omniglot_oneshot/run01/class_labels.txt").read_text().splitlines()[0]
    assert line == "run01/test/item01.png run01/training/class08.png"
    assert runs[0].test_labels[0] == 7


@needs_mirror
def test_official_demo_error_is_reproduced(real_root):
    """The official demo's modified Hausdorff distance on the full-size drawings gives 38.8%
    error: the loader pairs each test drawing with the right class."""
    errors = []
    for run in load_runs(real_root, image_size=105):
        def inked(img):
            points = np.argwhere(img[0].numpy() > 127).astype(float)
            return points - points.mean(axis=0)
        train = [inked(x) for x in run.train_images]
        test = [inked(x) for x in run.test_images]
        train_trees, test_trees = [cKDTree(p) for p in train], [cKDTree(p) for p in test]
        cost = np.array([[max(train_trees[c].query(test[q])[0].mean(),
                              test_trees[q].query(train[c])[0].mean()) for c in range(20)]
                         for q in range(20)])
        errors.append(np.mean(cost.argmin(axis=1) != run.test_labels.numpy()))
    assert 100 * np.mean(errors) == pytest.approx(38.8, abs=0.05)


@needs_mirror
def test_raw_pixels_baseline_is_in_a_sane_range(real_root):
    result = one_shot_error(raw_pixels, load_runs(real_root))
    assert result.num_runs == 20 and len(result.errors) == 20
    assert all(0 <= e <= 1 for e in result.errors)
    assert 0.5 < result.mean < 0.9  # far worse than people (4.5%), clearly better than chance
    assert 0 < result.std < 0.3


def test_missing_runs_name_the_fetch_command(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="python data_scripts/fetch_omniglot.py --root"):
        load_runs(tmp_path)


@needs_mirror
def test_incomplete_runs_name_the_fetch_command(real_root, tmp_path):
    shutil.copytree(real_root / "omniglot_oneshot", tmp_path / "omniglot_oneshot")
    (tmp_path / "omniglot_oneshot/run05/test/item11.png").unlink()
    with pytest.raises(DatasetNotFoundError, match="run05 is incomplete.*fetch_omniglot.py"):
        load_runs(tmp_path)


@needs_mirror
def test_corrupted_archive_is_refused_and_nothing_is_left(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    data = (SHARED_OMNIGLOT / "all_runs.zip").read_bytes()
    (mirror / "all_runs.zip").write_bytes(data[: len(data) // 2])
    root = tmp_path / "data"
    with pytest.raises(fetch_omniglot.FetchError, match="corrupted or truncated: SHA-256"):
        fetch_omniglot.fetch_runs(root, mirror)
    assert list(root.iterdir()) == []


def test_archive_of_another_layout_is_refused(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    sha = make_runs_zip(mirror / "all_runs.zip", labels_of=lambda r: [0] * 20)  # not one each
    monkeypatch.setattr(fetch_omniglot, "RUNS_FILE", ("all_runs.zip", sha))
    with pytest.raises(fetch_omniglot.FetchError, match="does not pair 20 test drawings"):
        fetch_omniglot.fetch_runs(tmp_path / "data", mirror)
    assert list((tmp_path / "data").iterdir()) == []


def test_bad_inputs_are_refused():
    runs = fake_runs(2)
    with pytest.raises(ValueError, match=r"\(N, D\): it gave \(79, 4\) for 80 images"):
        one_shot_error(lambda x: torch.ones(len(x) - 1, 4), runs)
    with pytest.raises(ValueError, match="must have shape \\(B, D\\)"):
        one_shot_error(lambda x: torch.ones(len(x)), runs)
    with pytest.raises(ValueError, match="NaN or infinite"):
        one_shot_error(lambda x: torch.full((len(x), 2), float("nan")), runs)
    with pytest.raises(ValueError, match="must be a torch.Tensor"):
        one_shot_error(lambda x: x.flatten(1).numpy(), runs)
    with pytest.raises(ValueError, match="nn.Module or a function"):
        one_shot_error("resnet", runs)
    with pytest.raises(ValueError, match="non-empty sequence of OneShotRun"):
        one_shot_error(raw_pixels, [])
    with pytest.raises(ValueError, match="one shape"):
        one_shot_error(raw_pixels, runs + fake_runs(1, size=10))
    with pytest.raises(ValueError, match="image_size must be between 8 and 105"):
        load_runs(image_size=200)
    train, test = torch.randn(2, 5, 3), torch.randn(2, 4, 3)
    with pytest.raises(ValueError, match="test_embeddings must be"):
        nearest_neighbor_errors(train, torch.randn(2, 4, 6), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="integer tensor of shape"):
        nearest_neighbor_errors(train, test, torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"must lie in \[0, C = 5\)"):
        nearest_neighbor_errors(train, test, torch.full((2, 4), 5))


def test_script_overlap_lists_the_glyphs_written_in_an_evaluation_alphabets_script():
    from bierlib.oneshot import script_overlap
    glyphs = [ord(c) for c in "Жαਕ∑ѫ"]  # Cyrillic, Greek, Gurmukhi, a symbol, Old Cyrillic
    assert script_overlap(glyphs) == {"Old_Church_Slavonic_(Cyrillic)": "Жѫ", "Gurmukhi": "ਕ"}
    assert script_overlap(glyphs, {"Tengwar": None}) == {}
    with pytest.raises(ValueError, match="no Unicode name"):
        script_overlap([0x0378])  # unassigned
