"""The benchmark scripts run and print their tables (timings themselves are not tested)."""
import subprocess
import sys

import pytest

from .conftest import REPO


def test_loss_benchmark_prints_a_table():
    pytest.importorskip("pytorch_metric_learning")
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "losses.py"),
                             "--sizes", "16", "--dim", "8", "--budget", "0.01"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.strip().startswith("16 ")]
    assert [row[1] for row in rows] == ["contrastive", "triplet", "lifted"]
    assert all(float(value) > 0 for row in rows for value in row[2:])


def test_paper_throughput_benchmark_runs_on_cpu():
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "paper_throughput.py"),
                             "--device", "cpu", "--image-size", "48", "--steps", "1",
                             "--images", "24", "--batch-scale", "0.05",
                             "--workers", "1", "--configs", "bier_cub200"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    names = [line.split("  ")[0].strip() for line in result.stdout.splitlines()
             if line.startswith(("loader alone", "binomial", "bier"))]
    assert names == ["loader alone", "binomial (googlenet, D = 512)",
                     "bier (googlenet, D = 512)"], result.stdout


def test_distributed_benchmark_prints_one_row_per_process_count():
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "distributed.py"),
                             "--methods", "contrastive", "--steps", "1", "--warmup", "1"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    assert [(row[0], row[1]) for row in rows] == [("contrastive", "1"), ("contrastive", "2")]
    assert rows[0][-1] == "1.00" and float(rows[1][-2]) > 0
