"""Grading a class: fabricated submissions of Chapter 1 graded end to end, and the repository
address spelled in one place only."""
import contextlib
import csv
import io
import json
import subprocess

import nbformat
import pytest

from bierlib.book.grade import exercise_cells, grade_notebook, main
from bierlib.book.notebook import repository_url, setup_cell

from .conftest import REPO

CHAPTER = "01_contrastive"
STUB = "raise NotImplementedError("


def _student_notebook() -> nbformat.NotebookNode:
    return nbformat.read(REPO / "student" / f"{CHAPTER}.ipynb", as_version=4)


def _with_answer(body: str) -> nbformat.NotebookNode:
    """The student version with the exercise's stub replaced by ``body`` (indented as the stub)."""
    notebook = _student_notebook()
    (index, _), = exercise_cells(notebook)
    cell = notebook.cells[index]
    lines = cell.source.splitlines()
    row = next(i for i, line in enumerate(lines) if STUB in line)
    indent = lines[row][:len(lines[row]) - len(lines[row].lstrip())]
    lines[row:row + 1] = [indent + line for line in body.strip("\n").splitlines()]
    cell.source = "\n".join(lines)
    return notebook


def _solution() -> str:
    """The book's own solution of the exercise (between the solution markers)."""
    book = nbformat.read(REPO / "book" / f"{CHAPTER}.ipynb", as_version=4)
    (index, _), = exercise_cells(book)
    source = book.cells[index].source
    inside = source.split("### BEGIN SOLUTION\n")[1].split("### END SOLUTION")[0]
    return "\n".join(line.strip() and line[4:] for line in inside.splitlines())  # dedent once


@pytest.fixture(scope="module")
def class_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    complete = _with_answer(_solution())
    complete.cells.insert(5, nbformat.v4.new_code_cell("note = 'a cell the student added'"))
    submissions = {
        "ada": complete,
        "ben": _student_notebook(),  # handed in untouched
        "cy": _with_answer(_solution().replace("0.5 * (pos_term", "(pos_term")),  # no 1/2
        "dee": _with_answer("raise RuntimeError('my own bug')"),
        "eve": _with_answer("while True:\n    pass"),
    }
    for name, notebook in submissions.items():
        nbformat.write(notebook, folder / f"{name}.ipynb")
    (folder / "fay.ipynb").write_text('{"cells": [')  # a corrupted file
    other = nbformat.read(REPO / "student" / "03_bier.ipynb", as_version=4)
    nbformat.write(other, folder / "gus.ipynb")  # another chapter's notebook
    return folder


@pytest.fixture(scope="module")
def graded(class_folder, tmp_path_factory):
    """Grade the class (the kernels load Omniglot from $BIERLIB_DATA, as the chapters do)."""
    before = {p.name: p.read_bytes() for p in class_folder.iterdir()}
    out = tmp_path_factory.mktemp("grades") / "grades.csv"
    args = [str(class_folder), "--chapter", CHAPTER, "--out", str(out), "--timeout", "40",
            "--jobs", "2"]  # two kernels at a time; the rows keep the submissions' order
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(args) == 0
    assert {p.name: p.read_bytes() for p in class_folder.iterdir()} == before  # never modified
    with open(out) as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    return rows, printed.getvalue()


def test_every_submission_gets_the_right_row(graded):
    graded, _ = graded
    assert graded["ada"]["status"] == "passed" and graded["ada"]["exercise"] == "contrastive-loss"
    assert graded["ben"]["status"] == "not attempted"
    assert graded["cy"]["status"] == "failed" and "factor 1/2" in graded["cy"]["detail"]
    assert graded["dee"]["status"] == "error"
    assert graded["dee"]["detail"] == "RuntimeError: my own bug"
    assert graded["eve"]["status"] == "timeout"
    assert graded["fay"]["status"] == "invalid"
    assert "not a readable notebook" in graded["fay"]["detail"]
    assert graded["gus"]["status"] == "invalid" and "03_bier" in graded["gus"]["detail"]


def test_summary_shows_every_student_and_counts_passes(graded):
    _, printed = graded
    lines = printed.splitlines()
    assert lines[0].split() == ["student", "contrastive-loss"]
    assert [line.split()[0] for line in lines[1:8]] == ["ada", "ben", "cy", "dee", "eve", "fay",
                                                        "gus"]
    assert lines[8].split() == ["passed", "1/7"]


def test_a_notebook_that_is_no_chapter_is_refused_clearly(tmp_path):
    plain = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    nbformat.write(plain, tmp_path / "zed.ipynb")
    (row,) = grade_notebook(tmp_path / "zed.ipynb")
    assert row.status == "invalid" and "not a chapter of the book" in row.detail


def test_repository_address_is_spelled_in_one_place():
    url = repository_url(REPO / "_config.yml")
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.split()
    spelled = [name for name in tracked if (REPO / name).is_file()
               and url in (REPO / name).read_text(errors="ignore")]
    notebooks = [n for n in spelled if n.endswith(".ipynb")]
    assert sorted(set(spelled) - set(notebooks)) == ["_config.yml"], spelled
    for name in notebooks:  # only inside the setup cell written from _config.yml
        cells = json.loads((REPO / name).read_text())["cells"]
        holders = ["".join(c["source"]) for c in cells if url in "".join(c["source"])]
        chapter = name.split("/")[-1].removesuffix(".ipynb")
        assert holders == [setup_cell(chapter, url)], name
