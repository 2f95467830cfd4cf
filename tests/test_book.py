"""The book builds from clean, executing every chapter, with warnings as errors."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import REPO


def toc_files() -> list[str]:
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    return [toc["root"]] + [entry["file"] for entry in toc["chapters"]]


@pytest.mark.book
def test_book_builds_and_executes_every_chapter():
    build = REPO / "_build"
    shutil.rmtree(build, ignore_errors=True)
    shutil.rmtree(REPO / "book" / "checkpoints", ignore_errors=True)  # train for real
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run([str(jupyter_book), "build", str(REPO), "-W", "-n", "--keep-going"],
                            cwd=REPO, capture_output=True, text=True)
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"jupyter-book build failed:\n{log[-20000:]}"
    for name in toc_files():
        page = build / "html" / f"{name}.html"
        assert page.is_file(), f"{name} was not built"
        if (REPO / f"{name}.ipynb").is_file():  # an executed chapter: outputs and captioned figures
            html = page.read_text()
            assert "cell_output" in html, f"{name} has no outputs: it was not executed"
            figures = re.findall(r'<figure[^>]*>.*?<img.*?<figcaption', html, flags=re.S)
            assert figures, f"{name}: expected captioned figures, found none"
            assert "Traceback (most recent call last)" not in html
