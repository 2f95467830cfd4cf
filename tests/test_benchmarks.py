"""The benchmark scripts run and print their tables (timings themselves are not tested)."""
import subprocess
import sys

import pytest

from .conftest import REPO


def test_loss_benchmark_prints_a_table():
    pytest.importorskip("pytorch_metric_learning")
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "losses.py"), "--sizes", "16",
                             "--dim", "8", "--budget", "0.01"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.strip().startswith("16 ")]
    assert [row[1] for row in rows] == ["contrastive", "triplet", "lifted"]
    assert all(float(value) > 0 for row in rows for value in row[2:])
