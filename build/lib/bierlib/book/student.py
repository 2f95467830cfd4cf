"""The student version of the book, generated from the same notebooks.

::

    python -m bierlib.book.student            # writes student/<chapter>.ipynb
    python -m bierlib.book.student --check    # fails if student/ is not current

It first writes each chapter's setup cell (its first code cell, which on Colab clones the
book's repository) from ``_config.yml``'s ``repository.url``, the one place the address
is spelled (see :data:`bierlib.book.notebook.SETUP_CELL`); ``--check`` fails when a
setup cell does not match it either.

Two conventions in the chapters make this possible:

* in a code cell, the lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION``
  are the answer to an exercise; the student version replaces them by
  ``raise NotImplementedError(...)`` at the same indentation, and keeps everything
  else, in particular the checks that follow (``check_contrastive_loss(...)``, the
  asserts against ``bierlib``);
* in the text, ``{solution}`` directives (hidden dropdowns in the rendered book) are
  removed, exercises stay.

Outputs are cleared. A student notebook runs top to bottom until the first
unfinished exercise, which stops it with a ``NotImplementedError`` naming the exercise.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import nbformat

from .notebook import book_config, repository_url, setup_cell

SOLUTION_CODE = re.compile(r"^([ \t]*)### BEGIN SOLUTION\n.*?^[ \t]*### END SOLUTION\n?",
                           re.M | re.S)
SOLUTION_TEXT = re.compile(r"^(`{3,}|:{3,})\{solution\}[^\n]*\n.*?^\1[ \t]*$\n?", re.M | re.S)
STUB = ('{indent}raise NotImplementedError("exercise: complete this part (the text above says '
        'what it should do), then run the cell and the check after it")\n')


def student_source(source: str, cell_type: str) -> str:
    """The student version of one cell's source."""
    if cell_type == "code":
        return SOLUTION_CODE.sub(lambda m: STUB.format(indent=m.group(1)), source)
    if cell_type == "markdown":
        return SOLUTION_TEXT.sub("", source)
    return source


def student_notebook(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``notebook`` with solutions removed and outputs cleared."""
    notebook = nbformat.from_dict(notebook)
    for cell in notebook.cells:
        cell.source = student_source(cell.source, cell.cell_type)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return notebook


def generate(book: Path) -> dict[str, str]:
    """``{file name: notebook JSON}`` of the student version of every chapter in ``book``."""
    chapters = sorted(book.glob("[0-9][0-9]_*.ipynb"))
    if not chapters:
        raise FileNotFoundError(f"no chapter notebooks (NN_name.ipynb) in {book}")
    return {path.name: nbformat.writes(student_notebook(nbformat.read(path, as_version=4)))
            for path in chapters}


def setup_cells(book: Path, url: str) -> dict[Path, str]:
    """``{chapter path: its JSON with the setup cell for url}`` for the chapters whose setup
    cell (the code cell that calls ``chapter_setup``) is not current."""
    stale = {}
    for path in sorted(book.glob("[0-9][0-9]_*.ipynb")):
        notebook = json.loads(path.read_text())
        cells = [c for c in notebook["cells"] if c["cell_type"] == "code"
                 and "import chapter_setup" in "".join(c["source"])]
        wanted = setup_cell(path.stem, url)
        if len(cells) == 1 and "".join(cells[0]["source"]) != wanted:
            cells[0]["source"] = wanted.splitlines(keepends=True)
            stale[path] = json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
    return stale


def main(argv: list[str] | None = None) -> int:
    root = Path(__file__).resolve().parents[2]
    parser = argparse.ArgumentParser(prog="python -m bierlib.book.student",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--book", type=Path, default=root / "book")
    parser.add_argument("--out", type=Path, default=root / "student")
    parser.add_argument("--check", action="store_true", help="only check that --out is current")
    args = parser.parse_args(argv)
    url = repository_url(book_config(args.book))
    outdated_setup = setup_cells(args.book, url)
    if args.check and outdated_setup:
        print(f"setup cells not written from _config.yml's repository.url ({url}): "
              f"{sorted(p.name for p in outdated_setup)}; run python -m bierlib.book.student",
              file=sys.stderr)
        return 1
    for path, text in outdated_setup.items():
        path.write_text(text)
    wanted = generate(args.book)
    stale = sorted(name for name, text in wanted.items()
                   if not (args.out / name).is_file() or (args.out / name).read_text() != text)
    extra = (sorted(p.name for p in args.out.glob("*.ipynb") if p.name not in wanted)
             if args.out.is_dir() else [])
    if args.check:
        if stale or extra:
            print(f"student version out of date: {stale + extra}; "
                  "run python -m bierlib.book.student", file=sys.stderr)
            return 1
        print(f"student version current ({len(wanted)} notebooks)")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name in stale:
        (args.out / name).write_text(wanted[name])
    for name in extra:
        (args.out / name).unlink()
    print(f"wrote {len(stale)} of {len(wanted)} student notebooks to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
