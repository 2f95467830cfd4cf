"""Data-parallel training (:mod:`bierlib.distributed`) on the CPU with gloo.

Two processes under ``torchrun`` must compute what one process computes with the same global
batch. The mechanisms are checked exactly against one process on the same data (the
global BatchNorm, the gathered batch and its gradient, the broadcast, the sharded
evaluation); whole runs of the command line are checked per step (epochs of one step, so
each record's loss is one step's loss) and on their final retrieval metrics, within the
float tolerance of summing in another order. A killed two-process run must resume and end
exactly where an uninterrupted one ends.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from bierlib import distributed
from bierlib.cli import main as cli_main
from bierlib.sampling import PKSampler

from .distributed_worker import SIZES, data, embedding_loss

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
#: A few steps, an evaluation after each (``clustering`` off: k-means on near-identical
#: embeddings may still land in another local optimum, so NMI and F1 are not compared).
SHORT = ["epochs=4", "steps_per_epoch=1", "eval_every=1", "clustering=false"]
RETRIEVAL = ("recall@1", "recall@2", "recall@4", "recall@8", "r_precision", "map@r")


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def _run(args: list[str], out: Path, processes: int = 1) -> list[dict]:
    """Run the command line (under torchrun with 2 processes) and return its records."""
    launcher = TORCHRUN if processes == 2 else [sys.executable]
    done = subprocess.run([*launcher, "-m", "bierlib.cli", *args, "--out", str(out)],
                          env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "metrics.json").read_text())["records"]


def test_sharded_sampler_gives_each_rank_disjoint_classes_of_the_same_batch():
    labels = np.repeat(np.arange(20), 6)
    pk = PKSampler(labels, classes_per_batch=8, images_per_class=4, num_batches=5, seed=3)
    shards = [distributed.ShardedBatchSampler(pk, rank, 2) for rank in (0, 1)]
    for epoch in (1, 2):
        for s in shards:
            s.set_epoch(epoch)
        pk.set_epoch(epoch)
        for whole, a, b in zip(pk, *shards):
            assert a + b == whole and len(a) == len(b) == 16
            assert not set(labels[a]) & set(labels[b])  # whole classes per rank
    assert len(shards[0]) == len(pk) == 5
    with pytest.raises(ValueError, match=r"rank must lie in \[0, 2\)"):
        distributed.ShardedBatchSampler(pk, 2, 2)


def test_a_global_batch_the_processes_cannot_share_is_refused():
    distributed.check_global_batch(32, 4, 2)
    distributed.check_global_batch(30, 4, 1)
    for p, n in ((30, 4), (2, 4)):
        with pytest.raises(ValueError, match=f"classes_per_batch={p}.*into {n} processes"):
            distributed.check_global_batch(p, 4, n)


def test_cli_refuses_it_before_any_process_trains(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("WORLD_SIZE", "4")
    with pytest.raises(SystemExit) as err:
        cli_main(["method=contrastive", "classes_per_batch=30", "--out", str(tmp_path / "run")])
    assert err.value.code == 2
    assert "multiple of the number of processes" in capsys.readouterr().err
    assert not (tmp_path / "run").exists() and not torch.distributed.is_initialized()


def test_single_process_functions_are_the_plain_computation():
    assert distributed.world() == (0, 1) and distributed.is_main()
    e, labels = torch.randn(5, 3), torch.arange(5)
    assert distributed.gather_batch(e, labels, {"a": 1})[0] is e
    assert distributed.on_main(lambda: 7) == 7
    bn = torch.nn.Sequential(torch.nn.BatchNorm2d(3))
    assert distributed.data_parallel(bn, torch.device("cpu")) is bn
    # one process draws its augmentation from the global RNG, as without this module
    torch.manual_seed(0)
    through = [b.clone() for b in distributed.rank_batches(torch.rand(3, 2), seed=0, epoch=1)]
    torch.manual_seed(0)
    assert all(torch.equal(x, y) for x, y in zip(through, torch.rand(3, 2)))


def test_mechanisms_match_one_process_on_the_whole_batch(tmp_path):
    done = subprocess.run([*TORCHRUN, str(ROOT / "tests" / "distributed_worker.py"),
                           str(tmp_path)], env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    d = data()

    # Global BatchNorm == one BatchNorm2d on all 8 images, outputs and gradients.
    bn = torch.nn.BatchNorm2d(3)
    x = d["x"].clone().requires_grad_()
    y = bn(x)
    (y * d["bn_target"]).sum().backward()
    assert {r["bn"]["type"] for r in ranks} == {"GlobalBatchNorm2d"}
    torch.testing.assert_close(torch.cat([r["bn"]["y"] for r in ranks]), y.detach())
    torch.testing.assert_close(torch.cat([r["bn"]["x_grad"] for r in ranks]), x.grad)
    torch.testing.assert_close(sum(r["bn"]["weight_grad"] for r in ranks), bn.weight.grad)
    for r in ranks:
        torch.testing.assert_close(r["bn"]["running_mean"], bn.running_mean)
        torch.testing.assert_close(r["bn"]["running_var"], bn.running_var)

    # The gathered batch is the whole batch; each rank's gradient is N times its rows' share of
    # the loss's gradient (DDP's average divides by N); the parameter's gradient is the full one.
    emb = d["embeddings"].clone().requires_grad_()
    weight = torch.nn.Parameter(d["weight"].clone())
    loss = embedding_loss(emb, d["labels"], weight)
    loss.backward()
    for r in ranks:
        g = r["gather"]
        torch.testing.assert_close(g["embeddings"], d["embeddings"])
        assert torch.equal(g["labels"], d["labels"]) and g["weight_kept"]
        torch.testing.assert_close(g["per_item"], d["embeddings"] * 2)
        torch.testing.assert_close(g["loss"], loss.detach())
        torch.testing.assert_close(g["weight_grad"], weight.grad)
    grads = torch.cat([r["gather"]["grad"] for r in ranks])
    assert [len(r["gather"]["grad"]) for r in ranks] == list(SIZES)
    torch.testing.assert_close(grads / 2, emb.grad)

    assert [r["on_main"] for r in ranks] == [{"rank": 0, "value": [1, 2, 3]}] * 2
    for r in ranks:
        emb7, lab7 = r["shards"]
        assert torch.equal(lab7, torch.arange(7)) and torch.equal(emb7[:, 0], torch.arange(7.))

    # Each rank augments its images with draws of its own (in the main process and in
    # data-loading workers), the same when fetched again; the global RNG stays shared.
    a, b = (r["augmentation"] for r in ranks)
    assert torch.equal(a["draws"], a["again"]) and torch.equal(b["draws"], b["again"])
    assert not torch.equal(a["draws"], b["draws"])
    assert not torch.equal(a["worker_draws"], b["worker_draws"])
    assert torch.equal(a["shared"], b["shared"])


def _assert_same_run(one: list[dict], two: list[dict], rtol: float, metric_atol: float) -> None:
    assert [r["step"] for r in one] == [r["step"] for r in two]
    np.testing.assert_allclose([r["loss"] for r in one[1:]], [r["loss"] for r in two[1:]],
                               rtol=rtol)
    validation = ["val_" + k for k in RETRIEVAL if "val_" + k in one[-1]]
    assert all(k in two[-1] for k in validation)
    for key in (*RETRIEVAL, *validation):
        np.testing.assert_allclose(one[-1][key], two[-1][key], atol=metric_atol, err_msg=key)


@pytest.mark.parametrize("method, options", [  # contrastive (lifted: its path) below
    ("bier", []), ("abier", []),
    # the validation alphabet evaluated beside the test alphabets; 2 steps, as the float
    # drift of training on these alphabets passes the tolerance by the 3rd step, with or
    # without the validation evaluation (measured: 1.7e-3 relative, dataset=omniglot-validation)
    ("contrastive", ["select_on=validation", "epochs=2"]),
    ("divide_and_conquer", ["recluster_every=2", "finetune_epoch=2"])])
def test_two_processes_train_what_one_process_trains(method, options, tmp_path):
    args = [f"method={method}", *SHORT, *options]
    one = _run(args, tmp_path / "one")
    two = _run(args, tmp_path / "two", processes=2)
    assert ("val_recall@1" in two[-1]) == ("select_on=validation" in options)
    # Per-step losses agree to float32 summation order (measured: <= 1e-4 relative); the
    # metrics to a few of the 2,240 queries: Adam's first steps turn rounding-level gradient
    # differences into +-lr updates, which can move a near-tie neighbour.
    _assert_same_run(one, two, rtol=5e-4, metric_atol=5 / 2240)


def test_a_killed_two_process_run_resumes_and_ends_as_an_uninterrupted_one(tmp_path):
    args = ["method=divide_and_conquer", "epochs=6", "steps_per_epoch=2", "eval_every=2",
            "clustering=false", "recluster_every=1", "finetune_epoch=4"]
    whole = _run(args, tmp_path / "whole", processes=2)
    out = tmp_path / "killed"
    proc = subprocess.Popen([*TORCHRUN, "-m", "bierlib.cli", *args, "--out", str(out)],
                            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    checkpoint, deadline = out / "checkpoint" / "last.pt", time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if checkpoint.is_file() and torch.load(checkpoint, weights_only=True)["epoch"] >= 2:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and both workers, mid-run
    proc.wait()
    assert not (out / "metrics.json").exists(), "the run finished before it could be killed"
    resumed = _run(args, out, processes=2)
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in resumed] == \
        [{k: v for k, v in r.items() if k != "seconds"} for r in whole]
