# Two commands do everything (see README.md):
#   make book   set up (venv, pinned dependencies, Omniglot) and build the book, executing every chapter
#   make test   set up if needed and run the test suite (unit tests + an executed, warnings-as-errors book build)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Where datasets live; the library and the fetch scripts use the same default.
export BIERLIB_DATA ?= $(HOME)/.cache/bierlib

.PHONY: setup data book test clean
setup: $(VENV)/.installed data

$(VENV)/.installed: requirements/lock.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements/lock.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

# Set BIERLIB_OMNIGLOT_MIRROR=DIR to copy the zips from a local folder instead of downloading.
data: $(VENV)/.installed
	$(BIN)/python data_scripts/fetch_omniglot.py

# Built from clean: no cached build, no training checkpoints from earlier runs.
book: setup
	rm -rf _build book/checkpoints
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "The book is in $(CURDIR)/_build/html/index.html"

test: setup
	$(BIN)/python -m pytest

clean:
	rm -rf _build book/checkpoints
