"""The book run from an installed package, as on Colab: the wheel carries what the chapters read
at run time, and a chapter executes from a copy of book/ outside the source tree through its
real setup cell (clone, pip install, fetch), with google.colab faked and the repository address
pointed at a local clone. Offline: the new environment reuses this one's pinned packages."""
import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from .conftest import REPO, SHARED_OMNIGLOT

CHAPTER = "07_ablation"  # reads the shipped weights' metadata, the study files, the data
PACKAGE_DATA = ("bierlib/weights/glyphs.pt", "bierlib/weights/glyphs.json",
                "bierlib/book/chapter_times.json")


def _run(*args, **kwargs):
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    return result


@pytest.mark.book
def test_chapter_runs_from_the_installed_wheel_as_on_colab(tmp_path):
    mirror = os.environ.get("BIERLIB_OMNIGLOT_MIRROR") or (
        str(SHARED_OMNIGLOT) if SHARED_OMNIGLOT.is_dir() else None)
    if mirror is None:
        pytest.skip("no Omniglot mirror (BIERLIB_OMNIGLOT_MIRROR or ../shared/data/omniglot): "
                    "the setup cell's fetch cannot run offline")
    origin = tmp_path / "origin"  # what Colab clones: the committed repository
    _run("git", "clone", "-q", REPO, origin)
    venv = tmp_path / "venv"  # a fresh environment whose dependencies are this one's wheels
    _run(sys.executable, "-m", "venv", "--without-pip", venv)  # pip, setuptools: the shared ones
    python = venv / "bin" / "python"
    purelib = _run(python, "-c",
                   "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    # plain paths, so that this environment's editable bierlib (a .pth finder) stays out
    (Path(purelib) / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0",
           "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "BIERLIB_DATA": str(tmp_path / "data"), "BIERLIB_OMNIGLOT_MIRROR": mirror}
    assert "No module named 'bierlib'" in subprocess.run(
        [python, "-c", "import bierlib"], capture_output=True, text=True, env=env,
        cwd=tmp_path).stderr

    # the wheel, and what the chapters read from the package at run time
    _run(python, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp_path / "dist", origin, env=env)
    wheel = next((tmp_path / "dist").glob("bierlib-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [p for p in PACKAGE_DATA if p not in names]
    assert not missing, f"the wheel lacks {missing}: add them to [tool.setuptools.package-data]"

    # the chapter, from a copy of book/ outside the source tree, through its setup cell
    book = tmp_path / "copy" / "book"
    shutil.copytree(origin / "book", book)
    notebook = nbformat.read(book / f"{CHAPTER}.ipynb", 4)
    setup = next(c for c in notebook.cells if "chapter_setup(" in c.source)
    url = next(line for line in setup.source.splitlines() if line.strip().startswith("REPOSITORY"))
    setup.source = (setup.source.replace(url, f'    REPOSITORY = "file://{origin}"')
                    .replace('"/content/"', f'"{tmp_path / "content"}/"'))
    notebook.cells.insert(0, nbformat.v4.new_code_cell(
        'import sys, types\nsys.modules["google.colab"] = types.ModuleType("google.colab")'))
    (tmp_path / "content").mkdir()
    nbformat.write(notebook, book / "colab.ipynb")
    # plain nbclient: bierlib is not installed until the notebook's setup cell installs it
    script = ("import nbclient, nbformat, sys\n"
              "nb = nbformat.read(sys.argv[1], 4)\n"
              "nbclient.NotebookClient(nb, timeout=600, kernel_name='python3',\n"
              "    resources={'metadata': {'path': sys.argv[2]}}).execute()\n"
              "nbformat.write(nb, sys.argv[1])\n")
    _run(python, "-c", script, book / "colab.ipynb", book, env=env, cwd=book)
    executed = nbformat.read(book / "colab.ipynb", 4)
    outputs = "".join(str(o) for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    installed = _run(python, "-c", "import bierlib; print(bierlib.__file__)", env=env,
                     cwd=tmp_path).stdout
    assert installed.startswith(purelib), installed  # the wheel, not a source tree
    assert (tmp_path / "content" / "origin" / "book").is_dir()  # the setup cell cloned
    assert (tmp_path / "data" / "omniglot").is_dir()  # and fetched the data
    assert "Traceback" not in outputs and "chapter 07_ablation | profile quick" in outputs
