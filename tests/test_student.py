"""The student version: generated from the book, current, and runnable up to the first exercise."""
import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from bierlib.book.execution import BoundedKernelManager
from bierlib.book.student import main, student_source

from .conftest import REPO

STUDENT = REPO / "student"


def test_code_solutions_become_stubs_and_checks_stay():
    source = ("def f(x):\n    ### BEGIN SOLUTION\n    y = x + 1\n    return y\n"
              "    ### END SOLUTION\n\ncheck(f)\n")
    out = student_source(source, "code")
    assert "y = x + 1" not in out and "SOLUTION" not in out
    assert (out.startswith("def f(x):\n    raise NotImplementedError(")
            and out.endswith("\n\ncheck(f)\n"))
    assert student_source("x = 1\n", "code") == "x = 1\n"


def test_solution_text_is_removed_with_nested_fences():
    text = ("```{exercise} A\n:label: a\nDo it.\n```\n\n````{solution} a\n:class: dropdown\n"
            "Like this:\n```python\nanswer()\n```\n````\n\n```{solution} b\nshort\n```\nafter\n")
    out = student_source(text, "markdown")
    assert out == "```{exercise} A\n:label: a\nDo it.\n```\n\n\nafter\n"


def test_student_version_is_current():
    assert main(["--check"]) == 0, "run: python -m bierlib.book.student"


def chapters_with_exercises():
    return [p for p in sorted(STUDENT.glob("*.ipynb")) if "NotImplementedError" in p.read_text()]


def test_every_training_chapter_has_a_code_exercise():
    names = [p.stem for p in chapters_with_exercises()]
    assert names == ["01_contrastive", "02_lifted", "03_bier", "04_abier", "05_divide_and_conquer"]


@pytest.mark.parametrize("path", chapters_with_exercises(), ids=lambda p: p.stem)
def test_student_notebook_runs_until_its_first_exercise(path, tmp_path):
    notebook = nbformat.read(path, as_version=4)
    first_stub = next(i for i, c in enumerate(notebook.cells)
                      if c.cell_type == "code" and "raise NotImplementedError" in c.source)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            kernel_manager_class=BoundedKernelManager,
                            resources={"metadata": {"path": str(tmp_path)}})
    with pytest.raises(CellExecutionError) as err:
        client.execute()
    assert err.value.ename == "NotImplementedError", err.value
    failed = [i for i, c in enumerate(notebook.cells) if c.cell_type == "code"
              and any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    # the error comes from the first exercise: its own cell, or the check right after it
    assert failed and first_stub <= failed[0] <= first_stub + 1, (first_stub, failed)
