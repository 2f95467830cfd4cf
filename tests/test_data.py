"""The Omniglot fetch script (offline, on fabricated and mirrored zips) and dataset class."""
import hashlib
import importlib.util
import io
import zipfile

import pytest
import torch

from bierlib.data import DatasetNotFoundError, Omniglot, data_root

from .conftest import REPO, SHARED_OMNIGLOT
from .test_oneshot import make_runs_zip

spec = importlib.util.spec_from_file_location("fetch_omniglot",
                                              REPO / "data_scripts" / "fetch_omniglot.py")
fetch_omniglot = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fetch_omniglot)


def make_zip(path, top, alphabets):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for alphabet, n_chars in alphabets.items():
            for c in range(1, n_chars + 1):
                for d in range(2):
                    zf.writestr(f"{top}/{alphabet}/character{c:02d}/x_{d}.png", b"png")
    path.write_bytes(buffer.getvalue())
    return hashlib.sha256(buffer.getvalue()).hexdigest()


@pytest.fixture
def fake_mirror(tmp_path, monkeypatch):
    """Two small zips with the official layout (Greek in both) and their checksums patched in."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    sums = {"images_background_small1.zip": make_zip(mirror / "images_background_small1.zip",
                                                     "images_background_small1",
                                                     {"A": 2, "Greek": 1}),
            "images_background_small2.zip": make_zip(mirror / "images_background_small2.zip",
                                                     "images_background_small2",
                                                     {"Greek": 1, "B": 3})}
    monkeypatch.setattr(fetch_omniglot, "FILES", sums)
    monkeypatch.setattr(fetch_omniglot, "EXPECTED", {"alphabets": 3, "characters": 6, "images": 12})
    # the one-shot runs, which the command line fetches too (tested in test_oneshot.py)
    monkeypatch.setattr(fetch_omniglot, "RUNS_FILE",
                        ("all_runs.zip", make_runs_zip(mirror / "all_runs.zip")))
    monkeypatch.setattr(fetch_omniglot, "RUNS_EXPECTED", {"runs": 1, "test": 20, "training": 20})
    return mirror


def test_fetch_deduplicates_and_is_idempotent(fake_mirror, tmp_path, capsys):
    root = tmp_path / "data"
    dest = fetch_omniglot.fetch(root, fake_mirror)
    assert sorted(p.name for p in dest.iterdir()) == ["A", "B", "COMPLETE.json", "Greek"]
    assert "3 alphabets, 6 characters, 12 images" in capsys.readouterr().out
    before = sorted(str(p) for p in dest.rglob("*"))
    fetch_omniglot.fetch(root, fake_mirror)
    assert "nothing to do" in capsys.readouterr().out
    assert sorted(str(p) for p in dest.rglob("*")) == before
    assert [p.name for p in root.iterdir()] == ["omniglot"]  # no temporary leftovers


def test_install_accepts_a_concurrent_install_of_the_same_folder(tmp_path):
    """Two processes (a notebook and a test worker) installing at once: the second one's rename
    finds the first one's complete folder and uses it; an incomplete folder is still an error."""
    fetchlib = fetch_omniglot.fetchlib

    def build(staging, other=None):
        if other is not None:  # the other process finishes first, while this one builds
            fetchlib.install(tmp_path, "set", lambda s: build(s))
        (staging / "x").write_text("x")
        return {"images": 1}

    dest = fetchlib.install(tmp_path, "set", lambda s: build(s, other=True))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]  # no staging leftovers
    assert sorted(p.name for p in dest.iterdir()) == ["COMPLETE.json", "x"]

    def broken(staging):
        (tmp_path / "half" / "y").mkdir(parents=True)  # someone left a half-written folder
        return {}

    with pytest.raises(OSError):
        fetchlib.install(tmp_path, "half", broken)


def test_truncated_file_is_refused_and_nothing_is_left(fake_mirror, tmp_path):
    archive = fake_mirror / "images_background_small2.zip"
    archive.write_bytes(archive.read_bytes()[:50])
    root = tmp_path / "data"
    with pytest.raises(fetch_omniglot.FetchError, match="corrupted or truncated: SHA-256"):
        fetch_omniglot.fetch(root, fake_mirror)
    assert list(root.iterdir()) == []


def test_missing_mirror_file_and_incomplete_folder(fake_mirror, tmp_path):
    (fake_mirror / "images_background_small1.zip").unlink()
    with pytest.raises(fetch_omniglot.FetchError, match="has no file images_background_small1.zip"):
        fetch_omniglot.fetch(tmp_path / "data", fake_mirror)
    (tmp_path / "half" / "omniglot").mkdir(parents=True)
    with pytest.raises(fetch_omniglot.FetchError, match="not a complete Omniglot extraction"):
        fetch_omniglot.fetch(tmp_path / "half", fake_mirror)


def test_main_reports_errors_with_exit_code(fake_mirror, tmp_path, capsys):
    assert fetch_omniglot.main(["--root", str(tmp_path / "d"),
                                "--mirror", str(tmp_path / "none")]) == 1
    assert "error:" in capsys.readouterr().err
    assert fetch_omniglot.main(["--root", str(tmp_path / "d"), "--mirror", str(fake_mirror)]) == 0


@pytest.mark.skipif(not SHARED_OMNIGLOT.is_dir(), reason="no ../shared/data/omniglot mirror")
def test_real_mirror_gives_official_counts(tmp_path):
    dest = fetch_omniglot.fetch(tmp_path, SHARED_OMNIGLOT)
    assert fetch_omniglot.count(dest) == {"alphabets": 8, "characters": 242, "images": 4840}
    train, test = Omniglot(tmp_path, "train"), Omniglot(tmp_path, "test")
    assert (len(train), train.num_classes, len(test), test.num_classes) == (2600, 130, 2240, 112)


def test_dataset_split_is_class_disjoint(fake_omniglot):
    train = Omniglot(fake_omniglot, "train", image_size=28)
    test = Omniglot(fake_omniglot, "test", image_size=32)
    assert train.images.shape == (24, 1, 28, 28) and test.images.shape == (24, 1, 32, 32)
    assert not set(train.class_names) & set(test.class_names)
    assert set(train.alphabet_of_class) == {"Balinese", "Greek", "Korean", "Sanskrit"}
    assert train.targets.tolist() == [t for t in range(8) for _ in range(3)]
    image, target = train[4]
    assert image.dtype == torch.float32 and 0 <= image.min() and image.max() <= 1 and target == 1
    assert len(Omniglot(fake_omniglot, "all")) == 48
    # strokes are bright: the fabricated images are mostly white paper, so mostly dark after
    # inversion
    assert train.images.float().mean() < 128


def test_missing_dataset_names_the_command(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="python data_scripts/fetch_omniglot.py --root"):
        Omniglot(tmp_path)


def test_bad_arguments(fake_omniglot):
    with pytest.raises(ValueError, match="split must be one of"):
        Omniglot(fake_omniglot, "val")
    with pytest.raises(ValueError, match="image_size"):
        Omniglot(fake_omniglot, image_size=4)


def test_validation_split_holds_out_a_training_alphabet(fake_omniglot):
    tune, validation = Omniglot(fake_omniglot, "tune"), Omniglot(fake_omniglot, "validation")
    train = Omniglot(fake_omniglot, "train")
    assert set(tune.class_names) | set(validation.class_names) == set(train.class_names)
    assert not set(tune.class_names) & set(validation.class_names)
    assert {c.split("/")[0] for c in validation.class_names} == {"Sanskrit"}


def test_data_root_default(monkeypatch, tmp_path):
    monkeypatch.setenv("BIERLIB_DATA", str(tmp_path))
    assert data_root() == tmp_path
    monkeypatch.delenv("BIERLIB_DATA")
    assert data_root().name == "bierlib"


def test_evaluation_view_of_in_memory_images(fake_omniglot):
    train = Omniglot(fake_omniglot, "train")
    assert train.evaluation_view() is train  # no transform: nothing to undo
    train.transform = lambda image: image.flip(-1)
    with pytest.raises(ValueError, match="has a transform"):
        train.evaluation_view()
    from bierlib.profiles import get_profile, load_datasets
    with pytest.raises(ValueError, match="not augmented"):
        load_datasets(get_profile("quick", augmentation="random-resized-crop"), fake_omniglot)
