"""benchmarks/book_time.py reads the builds' cell-time records (no book is built here)."""
import json
import subprocess
import sys

from bierlib.book.notebook import chapter_times

from .conftest import REPO

SCRIPT = REPO / "benchmarks" / "book_time.py"


def record(path, chapters, speed=1.0):
    """A cell-time record as bierlib.book.execution writes it during a build."""
    reference = chapter_times()["calibration_seconds"]
    data = {"speed": speed, "calibration_seconds": speed * reference, "chapters": {
        name: {"seconds": sum(cells.values()) + 2.0,
               "cells": [{"index": i, "id": f"{name}-{i}", "wall": wall, "kernel": wall,
                          "start_lag": 0.0, "reply_lag": 0.0, "first_line": f"cell {i}"}
                         for i, wall in cells.items()]}
        for name, cells in chapters.items()}}
    path.write_text(json.dumps(data))
    return path


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)],
                          capture_output=True, text=True, timeout=60)


def rows(stdout):
    return {line.split()[0]: line.split()[1:] for line in stdout.splitlines()[1:]
            if line.startswith(("0", "TOTAL"))}  # chapter rows, not the indented cell lines


def test_table_with_budgets_scaled_by_the_machine_speed(tmp_path):
    times = record(tmp_path / "cell_times.json", {"01_contrastive": {3: 50.0, 5: 20.0},
                                                  "02_lifted": {1: 30.0}}, speed=2.0)
    result = run("--times", times)
    assert result.returncode == 0, result.stderr
    table = rows(result.stdout)
    assert table["01_contrastive"][:3] == ["72.0", "120", "ok"]  # 60 s budget x 2
    assert table["01_contrastive"][3:] == ["nan", "-"]  # no executed notebook beside the record
    assert table["TOTAL"] == ["104.0", "600", "ok"]
    assert "2.00x" in result.stdout and "01_contrastive cell 3 50.0 s" in result.stdout
    slow = record(tmp_path / "slow.json", {"01_contrastive": {3: 70.0}})
    assert rows(run("--times", slow).stdout)["01_contrastive"][2] == "OVER"


def test_actual_time_against_the_time_the_chapter_printed(tmp_path):
    times = record(tmp_path / "cell_times.json", {"01_contrastive": {3: 50.0, 5: 40.0},
                                                  "02_lifted": {1: 28.0}}, speed=2.0)
    executed = tmp_path / "jupyter_execute" / "book"
    executed.mkdir(parents=True)
    for name, printed in (("01_contrastive", "1.2 min"), ("02_lifted", "60 s")):
        output = {"output_type": "stream", "name": "stdout",
                  "text": [f"expected run time: about {printed} here (30 s from a cold start"]}
        (executed / f"{name}.ipynb").write_text(json.dumps(
            {"cells": [{"cell_type": "code", "outputs": [output]}]}))
    table = rows(run("--times", times).stdout)
    assert table["01_contrastive"][3:] == ["72", "1.28"]  # 92 s against 1.2 min
    assert table["02_lifted"][3:] == ["60", "0.50"]


def test_cold_and_warm_side_by_side_and_the_written_record(tmp_path):
    cold = record(tmp_path / "cold.json", {"01_contrastive": {3: 50.0, 5: 20.0}})
    warm = record(tmp_path / "warm.json", {"01_contrastive": {3: 20.0, 5: 19.0}})
    out = tmp_path / "out" / "chapter_times.json"
    out.parent.mkdir()
    result = run("--compare", cold, warm, "--json", out)
    assert result.returncode == 0, result.stderr
    assert rows(result.stdout)["01_contrastive"] == ["72.0", "41.0", "31.0"]
    assert "cell  3 ('cell 3'): cold 50.0 s, warm 20.0 s, +30.0 s" in result.stdout
    saved = json.loads(out.read_text())
    assert saved["chapters"] == [{"docname": "book/01_contrastive", "seconds": 72.0,
                                  "cells": {"01_contrastive-3": 50.0, "01_contrastive-5": 20.0}}]
    assert saved["calibration_seconds"] == chapter_times()["calibration_seconds"]
    assert list(out.parent.iterdir()) == [out]  # no temp file left behind


def test_a_missing_record_exits_2_and_names_the_command(tmp_path):
    result = run("--times", tmp_path / "nowhere.json")
    assert result.returncode == 2 and "make book" in result.stderr and result.stdout == ""
