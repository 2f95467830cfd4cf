"""Every chapter's figures fit the page: at most 7.5 inches wide (they render at about 100% in
the book's column, so matplotlib's point sizes are what the reader sees), no text below 9 pt,
and a caption on every figure. They are shown with ``show_figure``, which gives each a
description of its data as alt text, and draw their series in the palette's styles
(:mod:`bierlib.palette`), not in matplotlib's default colours."""
import re

import nbformat
import pytest

from .conftest import REPO

CHAPTERS = sorted((REPO / "book").glob("*.ipynb"))
MAX_WIDTH = 7.5  # inches at matplotlib's 100 dpi: the rendered column is about 750 px wide
# matplotlib's colour cycle and tab10/tab20 (red against green), and colour maps other than
# the palette's CONTINUOUS (cividis) and greys
DEFAULT_COLOURS = re.compile(r"""["']C\d["']|f["']C\{|["']tab:|tab10|tab20|cmap=["'](?!gray)""")
LOOK_AT = re.compile(r"\bLook at\b")  # every caption tells the reader what to look for
COLOUR_ONLY_WORDS = re.compile(r"\b(green|red|cyan)\b", re.I)  # as the only cue in a caption


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_figures_fit_the_column_and_have_captions(path):
    for cell in nbformat.read(path, 4).cells:
        if cell.cell_type != "code":
            continue
        for width in re.findall(r"figsize=\(([^,]+),", cell.source):
            assert float(width) <= MAX_WIDTH, (
                f"{path.name}: figsize width {width} in > {MAX_WIDTH} in renders scaled down "
                f"(illegible labels): lay panels out in rows of at most two\n{cell.source}")
        for size in re.findall(r"fontsize=(\d+(?:\.\d+)?)", cell.source):
            assert float(size) >= 9, f"{path.name}: fontsize={size} < 9 pt\n{cell.source}"
        assert "plt.show()" not in cell.source, (
            f"{path.name}: show figures with bierlib.book.figures.show_figure(fig), which "
            f"gives them a description of their data as alt text\n{cell.source}")
        if "show_figure(" in cell.source:
            caption = cell.metadata.get("mystnb", {}).get("figure", {}).get("caption")
            assert caption, f"{path.name}: a figure without a caption\n{cell.source}"
            assert not COLOUR_ONLY_WORDS.search(caption), (
                f"{path.name}: the caption names a colour that red-green colour-blind readers "
                f"cannot see; name the marker, glyph or line style too\n{caption}")
            assert LOOK_AT.search(caption), (
                f"{path.name}: the caption says what the figure is but not what to look for: "
                f"end it with a sentence starting 'Look at'\n{caption}")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_figures_use_the_palette(path):
    for cell in nbformat.read(path, 4).cells:
        if cell.cell_type == "code":
            found = DEFAULT_COLOURS.search(cell.source)
            assert not found, (
                f"{path.name}: {found.group(0)!r}: draw series with bierlib.palette "
                f"(method_style, category_style, series_styles; CONTINUOUS for colour maps)\n"
                f"{cell.source}")
