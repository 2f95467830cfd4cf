"""Every line of the chapters' visible code cells fits the rendered code column: at most
``MAX_VISIBLE`` characters. On the built site (sphinx-book-theme, a 1280-px-wide window) a
code cell shows about 72 characters of a line; a longer line is cut at the cell's edge and
the reader has to scroll sideways to read the rest of it. Ruff's limit (100, in
pyproject.toml) is for the library; the pages need the narrower one. Cells tagged
``hide-input``, ``remove-input`` or ``remove-cell`` are collapsed or hidden on the site, so
only the cells the reader sees are checked."""
import nbformat
import pytest

from .conftest import REPO

CHAPTERS = sorted((REPO / "book").glob("*.ipynb"))
MAX_VISIBLE = 72  # characters a code cell shows without scrolling, 1280-px window
HIDDEN = {"hide-input", "remove-input", "remove-cell"}  # tags whose source the reader never sees


def long_lines(path):
    """``(cell index, line number, length, line)`` of the visible code lines over the limit."""
    found = []
    for index, cell in enumerate(nbformat.read(path, 4).cells):
        if cell.cell_type != "code" or HIDDEN & set(cell.metadata.get("tags", [])):
            continue
        for number, line in enumerate(cell.source.splitlines(), start=1):
            if len(line) > MAX_VISIBLE:
                found.append((index, number, len(line), line))
    return found


def test_there_are_chapters():
    assert CHAPTERS, "no chapter notebooks in book/"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_visible_code_fits_the_column(path):
    found = long_lines(path)
    assert not found, (
        f"{path.name}: {len(found)} visible code line(s) longer than {MAX_VISIBLE} characters "
        "(the rendered code column shows about 72; wrap them, or tag the cell hide-input if "
        "the reader does not need its code):\n"
        + "\n".join(f"  cell {index}, line {number} ({length} chars): {line}"
                    for index, number, length, line in found))
