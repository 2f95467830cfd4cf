"""benchmarks/book_time.py reads chapter runtimes from a build's pickle (no book is built)."""
import json
import pickle
import subprocess
import sys
from collections import defaultdict
from types import SimpleNamespace

from .conftest import REPO

SCRIPT = REPO / "benchmarks" / "book_time.py"


def exec_data(runtime, succeeded=True):
    """One document's record, as myst-nb's NbMetadataCollector.set_exec_data stores it."""
    return {"mtime": 1_700_000_000.0, "runtime": runtime, "method": "force", "succeeded": succeeded,
            "error": None, "traceback": None}


def fake_build(tmp_path, runtimes):
    """A build folder whose pickled 'environment' holds only nb_metadata, all the script reads."""
    metadata = defaultdict(dict)
    metadata["book/intro"] = {}  # a markdown page: no execution record
    for doc, runtime in runtimes.items():
        metadata[doc]["exec_data"] = exec_data(runtime)
    doctrees = tmp_path / "_build" / ".doctrees"
    doctrees.mkdir(parents=True)
    env = SimpleNamespace(nb_metadata=metadata)  # stands in for sphinx's BuildEnvironment
    (doctrees / "environment.pickle").write_bytes(pickle.dumps(env))
    return tmp_path / "_build"


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)],
                          capture_output=True, text=True, timeout=60)


def rows(stdout):
    return {line.split()[0]: line.split()[1:] for line in stdout.splitlines()[1:]
            if line and not line.startswith("source:")}


def test_table_within_budget(tmp_path):
    build = fake_build(tmp_path, {"book/01_contrastive": 61.5, "book/02_lifted": 30.0})
    result = run("--build", build)
    assert result.returncode == 0, result.stderr
    table = rows(result.stdout)
    assert list(table) == ["book/01_contrastive", "book/02_lifted", "TOTAL"]  # intro has no record
    assert table["book/01_contrastive"] == ["61.5", "1.02", "150", "ok"]
    assert table["TOTAL"] == ["91.5", "1.52", "600", "ok"]
    assert "environment.pickle" in result.stdout and "nb_metadata" in result.stdout


def test_over_budget_is_marked_and_still_exits_zero(tmp_path):
    build = fake_build(tmp_path, {"book/03_bier": 200.0, "book/04_abier": 100.0})
    out = tmp_path / "out" / "times.json"
    result = run("--build", build, "--chapter-budget", 150, "--book-budget", 250, "--json", out)
    assert result.returncode == 0, result.stderr
    table = rows(result.stdout)
    assert table["book/03_bier"][-1] == "OVER" and table["book/04_abier"][-1] == "ok"
    assert table["TOTAL"][-1] == "OVER"
    saved = json.loads(out.read_text())
    assert [c["status"] for c in saved["chapters"]] == ["OVER", "ok"]
    assert saved["total_seconds"] == 300.0 and saved["book_status"] == "OVER"
    assert list(out.parent.iterdir()) == [out]  # no temp file left behind


def test_missing_build_or_pickle_exits_2(tmp_path):
    result = run("--build", tmp_path / "nowhere")
    assert result.returncode == 2 and "make book" in result.stderr and result.stdout == ""
    (tmp_path / "_build").mkdir()
    result = run("--build", tmp_path / "_build")
    assert result.returncode == 2
    assert "environment.pickle" in result.stderr and "make book" in result.stderr
