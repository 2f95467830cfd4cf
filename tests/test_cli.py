"""The command line, the paper configurations and kill-and-resume of a real training process."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from bierlib.boosting import EnsembleEmbedder
from bierlib.cli import load_config, parse_overrides
from bierlib.losses import DivideAndConquerLoss

from .conftest import REPO

PAPER_CONFIGS = sorted((REPO / "configs" / "paper").glob("*.yaml"))
TINY = ["classes_per_batch=4", "images_per_class=2", "steps_per_epoch=2", "clustering=false",
        "eval_ks=[1,2]"]


def test_overrides_are_typed_and_unknown_keys_refused(tmp_path):
    assert parse_overrides(["epochs=2", "lr=1e-5", "eval_ks=[1, 10]", "model=resnet50"]) == {
        "epochs": 2, "lr": 1e-5, "eval_ks": [1, 10], "model": "resnet50"}
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["epochs"])
    with pytest.raises(ValueError, match=r"unknown settings \['epoch'\]"):
        load_config(None, {"method": "bier", "epoch": 3})
    with pytest.raises(ValueError, match="must set method"):
        load_config(None, {"epochs": 3})
    with pytest.raises(ValueError, match="method must be one of"):
        load_config(None, {"method": "bierr"})


@pytest.mark.parametrize("path", PAPER_CONFIGS, ids=lambda p: p.stem)
def test_paper_configs_load_and_build(path):
    config = load_config(path, {"pretrained": False})
    p = config.resolved_profile()
    assert p.needs_gpu and p.image_size == 224 and p.dataset in ("cub200", "cars196", "sop")
    model, loss = config.build()
    if isinstance(loss, DivideAndConquerLoss):  # the schedule wraps the network into K slices
        model = EnsembleEmbedder(model, loss.slice_sizes(p.embedding_dim))
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, p.embedding_dim) and torch.isfinite(out).all()
    if config.method in ("bier", "abier"):
        assert config.learner_sizes() == (96, 160, 256)
    if config.method in ("margin", "divide_and_conquer"):
        frozen = [m for m in model.modules() if type(m).__name__ == "FrozenBatchNorm2d"]
        assert frozen and p.model == "resnet50" and p.embedding_dim == 128


def _cli(args, root, **kwargs):
    env = {**os.environ, "BIERLIB_DATA": str(root)}
    return subprocess.Popen([sys.executable, "-m", "bierlib.cli", *args], env=env, cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def test_cli_runs_to_the_end_and_resumes_after_kill(fake_omniglot):
    root = fake_omniglot
    args = ["method=contrastive", "epochs=30", *TINY]
    straight = _cli([*args, "--out", "straight"], root)
    assert straight.wait(timeout=300) == 0, straight.stdout.read()

    victim = _cli([*args, "--out", "killed"], root, start_new_session=True)
    checkpoint = root / "killed" / "checkpoint" / "last.pt"
    deadline = time.time() + 300
    while not checkpoint.exists() and victim.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    saved = torch.load(checkpoint, weights_only=True)["epoch"]
    assert 1 <= saved < 30, "the process was not killed mid-run"
    assert not (root / "killed" / "metrics.json").exists()

    resumed = _cli([*args, "--out", "killed"], root)
    assert resumed.wait(timeout=300) == 0, resumed.stdout.read()
    a = json.loads((root / "straight" / "metrics.json").read_text())
    b = json.loads((root / "killed" / "metrics.json").read_text())
    assert [r["recall@1"] for r in a["records"]] == [r["recall@1"] for r in b["records"]]
    assert [r["loss"] for r in a["records"]] == [r["loss"] for r in b["records"]]
    assert a["config"] == b["config"] and a["config"]["epochs"] == 30
    assert a["name"] == b["name"] == "contrastive"  # no --config: the method names the run

    other = _cli([*args, "lr=0.01", "--out", "killed"], root)
    assert other.wait(timeout=300) != 0 and "another configuration" in other.stdout.read()


def test_paper_runs_table_reads_metrics_files(tmp_path):
    from bierlib.book.report import paper_runs, paper_runs_table
    for seed, r1 in ((0, 0.5), (1, 0.7)):
        run = tmp_path / f"bier_cub200-seed{seed}"
        run.mkdir()
        (run / "metrics.json").write_text(json.dumps({
            "name": "bier_cub200",
            "final": {"recall@1": r1, "nmi": None}}))
    runs = paper_runs(tmp_path)
    assert list(runs) == ["bier_cub200"] and len(runs["bier_cub200"]) == 2
    table = paper_runs_table(["bier_cub200", "dc_cub200"], runs, columns=("recall@1", "nmi"))
    assert "| `bier_cub200` (2 runs) | 0.600 ± 0.141 | - |" in table
    assert "| `dc_cub200` (not yet run) | - | - |" in table
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "metrics.json").write_text("{}")
    with pytest.raises(ValueError, match="not a metrics file"):
        paper_runs(tmp_path)
