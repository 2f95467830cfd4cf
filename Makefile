# Two commands do everything (see README.md):
#   make book   set up (venv, pinned dependencies, Omniglot) and build the book, executing every chapter
#   make test   set up if needed and run the test suite (unit tests + an executed, warnings-as-errors book build)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Where datasets live; the library and the fetch scripts use the same default.
export BIERLIB_DATA ?= $(HOME)/.cache/bierlib

.PHONY: setup data assets book test check-study clean
setup: $(VENV)/.installed data assets

$(VENV)/.installed: requirements/lock.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements/lock.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

# Set BIERLIB_OMNIGLOT_MIRROR=DIR to copy the zips from a local folder instead of downloading.
data: $(VENV)/.installed
	$(BIN)/python data_scripts/fetch_omniglot.py

# MathJax and the ipywidgets JavaScript, from npm (versions in package-lock.json), served by the
# built book from _static/ so that it renders with no network (see _config.yml); and axe-core,
# the accessibility checker that the browser test (tests/test_book.py) runs on every page, in
# _offline/axe/ (not served).
# The widget manager loads its icon fonts from @jupyter-widgets/html-manager/dist/ relative
# to the page, so they go beside the chapters (html_extra_path keeps this layout).
WIDGET_FONTS := _offline/extra/book/@jupyter-widgets/html-manager/dist
assets: _offline/static/require.js

_offline/static/require.js: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	rm -rf _offline && mkdir -p _offline/static/widgets $(WIDGET_FONTS)
	cp -r node_modules/mathjax/es5 _offline/static/mathjax
	find node_modules/@jupyter-widgets/html-manager/dist -maxdepth 1 -type f -name '*.js' \
		-exec cp {} _offline/static/widgets/ \;
	find node_modules/@jupyter-widgets/html-manager/dist -maxdepth 1 -type f \
		\( -name '*.woff*' -o -name '*.ttf' -o -name '*.eot' -o -name '*.svg' \) -exec cp {} $(WIDGET_FONTS)/ \;
	mkdir -p _offline/axe && cp node_modules/axe-core/axe.min.js _offline/axe/
	cp node_modules/requirejs/require.js $@

# Built from clean: no cached build, no training runs from earlier builds.
book: setup
	rm -rf _build book/runs
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "The book is in $(CURDIR)/_build/html/index.html"

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# The whole first run of every committed study, re-run and compared with its file (the test suite
# re-runs their first 160 steps only).
check-study: setup
	for s in tune ablation long; do $(BIN)/python -m bierlib.study check $$s || exit 1; done

clean:
	rm -rf _build book/runs _offline
