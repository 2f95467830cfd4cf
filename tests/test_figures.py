"""Every chapter's figures fit the page: at most 7.5 inches wide (they render at about 100% in
the book's column, so matplotlib's point sizes are what the reader sees), no text below 9 pt,
and a caption on every figure."""
import re

import nbformat
import pytest

from .conftest import REPO

CHAPTERS = sorted((REPO / "book").glob("*.ipynb"))
MAX_WIDTH = 7.5  # inches at matplotlib's 100 dpi: the rendered column is about 750 px wide


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
        if "plt.show()" in cell.source:
            caption = cell.metadata.get("mystnb", {}).get("figure", {}).get("caption")
            assert caption, f"{path.name}: a figure without a caption\n{cell.source}"
