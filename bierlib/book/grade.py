"""Grade students' notebooks of the book's chapters.

::

    python -m bierlib.book.grade SUBMISSIONS... [--chapter 01_contrastive] [--out grades.csv]
                                 [--timeout 600] [--jobs 1]

``SUBMISSIONS`` are notebook files or folders of them. Each submission is copied into a
fresh temporary folder and executed there in its own kernel process, from its first cell
to its last exercise cell (the cells after it train models and check nothing), with a time
limit for the whole notebook; the submitted file is never modified. Exercises are the
code cells tagged ``exercise:<name>`` in the book (the student version keeps the tags), so
a student who adds, moves or deletes other cells is still graded right. Each exercise gets:

* ``passed`` -- the cell, with the check that follows the solution, ran without error;
* ``failed`` -- the check rejected the answer (its plain-words message is recorded);
* ``not attempted`` -- the ``NotImplementedError`` of the student version is still there;
* ``error`` -- another exception (its type and last line are recorded);
* ``timeout`` -- the notebook's time limit ran out before the cell finished.

A file that is not a notebook, not a chapter of the book, or another chapter's notebook
(with ``--chapter``) gets one row saying so, and grading goes on with the others. The
command writes a CSV (one row per student and exercise, in the submissions' order) and
prints a summary table. ``--jobs N`` grades N submissions at a time, each in its own
kernel (a class of 30 on a 4-core machine: ``--jobs 4``).

Grading executes the students' code with the rights of whoever runs it: run it in a
throwaway environment (a container, or a separate user account), never in your own.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import csv
import dataclasses
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import nbformat

from ..utils import atomic_write

EXERCISE_TAG = "exercise:"
CHECK_FAILURES = ("ExerciseError", "AssertionError")


@dataclasses.dataclass(frozen=True)
class Grade:
    student: str  # the submission's file name without .ipynb
    chapter: str
    exercise: str
    status: str  # passed, failed, not attempted, error, timeout, invalid
    detail: str = ""


def chapter_of(notebook: nbformat.NotebookNode) -> str | None:
    """The chapter a notebook belongs to (``metadata.bierlib.chapter``), or None."""
    return notebook.metadata.get("bierlib", {}).get("chapter")


def exercise_cells(notebook: nbformat.NotebookNode) -> list[tuple[int, str]]:
    """``(cell index, exercise name)`` of every exercise cell, in order."""
    return [(i, tag[len(EXERCISE_TAG):]) for i, cell in enumerate(notebook.cells)
            for tag in cell.get("metadata", {}).get("tags", []) if tag.startswith(EXERCISE_TAG)]


def outcome(cell: nbformat.NotebookNode) -> tuple[str, str]:
    """The (status, detail) of one executed exercise cell."""
    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    if not errors:
        return ("passed", "") if cell.get("execution_count") is not None else \
            ("error", "the cell was not executed")
    name, value = errors[0].get("ename", ""), str(errors[0].get("evalue", "")).strip()
    last_line = value.splitlines()[-1] if value else ""
    if name == "NotImplementedError":
        return "not attempted", ""
    if name == "ExerciseCrash":  # the check caught the student's own exception
        return "error", last_line.removeprefix("your function raised ")
    if name in CHECK_FAILURES:
        return "failed", value
    return "error", f"{name}: {last_line}"


def grade_notebook(path: Path, chapter: str | None = None, timeout: float = 600,
                   kernel: str = "python3") -> list[Grade]:
    """Grade one submission (see the module docstring); never raises for a bad submission."""
    student = path.stem
    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception as err:  # not JSON, not a notebook: the row says so, grading goes on
        return [Grade(student, chapter or "", "-", "invalid",
                      f"not a readable notebook ({type(err).__name__}: {err})")]
    found = chapter_of(notebook)
    if found is None:
        return [Grade(student, chapter or "", "-", "invalid", "not a chapter of the book "
                      "(no metadata.bierlib.chapter: was it made from student/?)")]
    if chapter is not None and found != chapter:
        return [Grade(student, chapter, "-", "invalid",
                      f"this is chapter {found}'s notebook, not {chapter}'s")]
    exercises = exercise_cells(notebook)
    if not exercises:
        return [Grade(student, found, "-", "invalid", "the notebook has no exercise cells")]
    notebook.cells = notebook.cells[:exercises[-1][0] + 1]  # what comes after checks nothing
    stopped_at = _execute(notebook, path, timeout, kernel)
    late = ("timeout", f"the notebook's time limit ({timeout:g} s) ran out before this cell ended")
    return [Grade(student, found, name, *(late if stopped_at is not None and i >= stopped_at
                                          else outcome(notebook.cells[i])))
            for i, name in exercises]


def _execute(notebook: nbformat.NotebookNode, path: Path, timeout: float,
             kernel: str) -> int | None:
    """Execute ``notebook`` in place in a kernel started in a temporary folder that holds a copy
    of the submission; return the index of the cell that was running when the time limit ran
    out (None if it did not)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    from .execution import BoundedKernelManager  # no silent stall (see that module)

    deadline = time.monotonic() + timeout
    running = {}
    with tempfile.TemporaryDirectory(prefix="grade-") as folder:
        shutil.copy2(path, Path(folder) / path.name)
        client = NotebookClient(notebook, kernel_name=kernel, allow_errors=True,
                                kernel_manager_class=BoundedKernelManager,
                                timeout_func=lambda cell: max(1, int(deadline - time.monotonic())),
                                resources={"metadata": {"path": folder}})
        client.on_cell_start = lambda cell, cell_index: running.update(index=cell_index)
        try:
            client.execute(stderr=subprocess.DEVNULL)  # the kernel's own log, not the cells'
        except (CellTimeoutError, DeadKernelError):
            return running.get("index", 0)
    return None


def notebooks(paths: Iterable[str | Path]) -> list[Path]:
    """The notebook files among ``paths`` (folders are searched, not recursively)."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(q for q in p.iterdir() if q.is_file() and q.suffix == ".ipynb")
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p} does not exist; give notebook files or folders of them")
    return out


def write_csv(grades: Sequence[Grade], path: Path) -> None:
    def write(f):
        writer = csv.writer(f)
        writer.writerow([field.name for field in dataclasses.fields(Grade)])
        writer.writerows(dataclasses.astuple(g) for g in grades)

    atomic_write(path, write, binary=False)


def summary(grades: Sequence[Grade]) -> str:
    """Students x exercises (status of each), then how many passed each exercise."""
    exercises = list(dict.fromkeys(g.exercise for g in grades if g.status != "invalid"))
    students = list(dict.fromkeys(g.student for g in grades))
    status = {(g.student, g.exercise): g.status for g in grades}
    invalid = {g.student: g.detail for g in grades if g.status == "invalid"}
    width = max([len("student")] + [len(s) for s in students])
    columns = [max(len(e), len("not attempted")) for e in exercises]
    lines = [f"{'student':<{width}}  " + "  ".join(f"{e:<{w}}" for e, w in zip(exercises, columns))]
    for s in students:
        reason = invalid.get(s, "")
        reason = reason if len(reason) <= 60 else reason[:57] + "..."  # the CSV has all of it
        cells = ([f"invalid: {reason}"] if s in invalid else
                 [f"{status.get((s, e), '-'):<{w}}" for e, w in zip(exercises, columns)])
        lines.append(f"{s:<{width}}  " + "  ".join(cells))
    passed = [sum(status.get((s, e)) == "passed" for s in students) for e in exercises]
    lines.append(f"{'passed':<{width}}  " + "  ".join(
        f"{f'{n}/{len(students)}':<{w}}" for n, w in zip(passed, columns)))
    return "\n".join(line.rstrip() for line in lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bierlib.book.grade",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("submissions", nargs="+", help="notebook files or folders of them")
    parser.add_argument("--chapter", help="the chapter handed out, e.g. 01_contrastive")
    parser.add_argument("--out", type=Path, default=Path("grades.csv"), help="CSV to write")
    parser.add_argument("--timeout", type=float, default=600,
                        help="seconds per notebook (default 600)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="submissions graded at a time, each in its own kernel (default 1)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be a positive integer, found {args.jobs}")
    try:
        paths = notebooks(args.submissions)
    except FileNotFoundError as err:
        parser.error(str(err))

    def grade(path):
        print(f"grading {path} ...", file=sys.stderr, flush=True)
        return grade_notebook(path, args.chapter, args.timeout)

    # each grading waits on its own kernel process: threads overlap them
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        grades = [g for rows in pool.map(grade, paths) for g in rows]
    write_csv(grades, args.out)
    print(summary(grades))
    print(f"\n{len(paths)} notebook(s) graded; one row per student and exercise in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
