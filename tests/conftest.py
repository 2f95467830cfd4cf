import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bierlib.data import TEST_ALPHABETS, TRAIN_ALPHABETS

REPO = Path(__file__).resolve().parents[1]
SHARED_OMNIGLOT = REPO.parent / "shared" / "data" / "omniglot"
sys.path.insert(0, str(REPO / "data_scripts"))  # the fetch scripts import fetchlib beside them


@pytest.fixture
def fake_omniglot(tmp_path) -> Path:
    """A miniature extracted Omniglot (official layout): 2 characters x 3 drawings per alphabet."""
    folder = tmp_path / "omniglot"
    rng = np.random.default_rng(0)
    for alphabet in TRAIN_ALPHABETS + TEST_ALPHABETS:
        for c in (1, 2):
            char = folder / alphabet / f"character{c:02d}"
            char.mkdir(parents=True)
            for d in range(3):
                pixels = (rng.random((105, 105)) > 0.1).astype(np.uint8) * 255
                Image.fromarray(pixels).convert("1").save(char / f"0{c}{d}_{d:02d}.png")
    (folder / "COMPLETE.json").write_text(
        json.dumps({"alphabets": 8, "characters": 16, "images": 48}))
    return tmp_path


def random_batch(b=12, d=5, classes=4, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, d, generator=g, dtype=dtype)
    y = torch.arange(b) % classes
    return x, y
