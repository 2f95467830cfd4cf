"""The pretraining source (font glyphs), the shipped weights and the pretraining command."""
import hashlib
import json
import shutil
import unicodedata

import numpy as np
import pytest
import torch

from bierlib.data.glyphs import FontGlyphs, choose_classes, glyph_classes
from bierlib.models import (PRETRAINED, WEIGHTS_FOLDER, SmallConvNet, load_pretrained,
                            pretrained_metadata)
from bierlib.pretrain import main as pretrain_main


def test_glyph_classes_are_many_and_never_latin_or_katakana():
    pool = glyph_classes()
    assert len(pool) >= 1000
    for cp, fonts in pool:
        name = unicodedata.name(chr(cp))
        assert cp >= 0x370 and not 0x3040 <= cp <= 0x30FF and not 0x1D400 <= cp <= 0x1D7FF
        assert "LATIN" not in name and "KATAKANA" not in name, name
        assert len(fonts) >= 4
    code_points = {cp for cp, _ in pool}
    for lookalike in (0x0410, 0x039F, 0x0445, 0x0422):  # Cyrillic A, Greek O, Cyrillic x, T
        assert lookalike not in code_points


def test_font_glyphs_deterministic_split_and_checked():
    a = FontGlyphs("train", num_classes=5, renderings=3, seed=0)
    b = FontGlyphs("train", num_classes=5, renderings=3, seed=0)
    held = FontGlyphs("heldout", num_classes=5, renderings=3, seed=0)
    assert a.images.shape == (15, 1, 28, 28) and a.images.dtype == torch.uint8
    assert torch.equal(a.images, b.images) and a.class_names == held.class_names
    assert not torch.equal(a.images, held.images)  # other renderings of the same classes
    assert (a.images.float().mean((1, 2, 3)) > 1).all()  # every image has ink
    assert [cp for cp, _ in choose_classes(5)] == a.code_points
    with pytest.raises(ValueError, match="split must be one of"):
        FontGlyphs("test")
    with pytest.raises(ValueError, match="num_classes must be between 1 and"):
        FontGlyphs(num_classes=10 ** 6)


def test_shipped_weights_match_their_metadata_and_load():
    meta = pretrained_metadata()
    data = (WEIGHTS_FOLDER / meta["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == meta["sha256"]
    assert len(data) < 10 * 2 ** 20
    assert meta["source"]["classes"] >= 1000 and meta["heldout_accuracy"] > 0.5
    assert "python -m bierlib.pretrain" in meta["command"]
    torch.manual_seed(0)
    scratch, loaded = SmallConvNet(), SmallConvNet(pretrained=True)
    state = torch.load(WEIGHTS_FOLDER / meta["file"], weights_only=True)
    for key, value in loaded.features.state_dict().items():
        assert torch.equal(value, state[key])
    assert not torch.equal(scratch.features[0].weight, loaded.features[0].weight)
    with pytest.raises(ValueError, match="build SmallConvNet with those widths"):
        load_pretrained(SmallConvNet(widths=(8, 8)))


def test_corrupted_weights_are_refused(tmp_path, monkeypatch):
    folder = tmp_path / "weights"
    shutil.copytree(WEIGHTS_FOLDER, folder)
    monkeypatch.setattr("bierlib.models.WEIGHTS_FOLDER", folder)
    path = folder / f"{PRETRAINED}.pt"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(RuntimeError, match="does not match its metadata's sha256"):
        SmallConvNet(pretrained=True)
    with pytest.raises(FileNotFoundError, match="python -m bierlib.pretrain"):
        pretrained_metadata("nonexistent")


def test_pretraining_command_writes_weights_and_metadata(tmp_path, capsys):
    pretrain_main(["--out", str(tmp_path), "--name", "tiny", "--steps", "3", "--classes", "20",
                   "--renderings", "2", "--batch-size", "16"])
    meta = json.loads((tmp_path / "tiny.json").read_text())
    assert meta["training"]["steps"] == 3 and meta["source"]["images"] == 40
    assert hashlib.sha256((tmp_path / "tiny.pt").read_bytes()).hexdigest() == meta["sha256"]
    assert not (tmp_path / "tiny.partial.pt").exists()
    assert 0 <= meta["heldout_accuracy"] <= 1
    assert "heldout_accuracy" in capsys.readouterr().out
    assert np.isfinite(meta["training"]["seconds"])
