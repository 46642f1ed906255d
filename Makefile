# The project's commands. `make book` and `make test` work on a fresh machine: both create
# .venv if absent and install requirements.txt (the pinned working set) into it.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
JB := $(VENV)/bin/jupyter-book
STAMP := $(VENV)/.installed
NBVAL := --nbval --nbval-sanitize-with tests/sanitize.cfg --nbval-cell-timeout=300

.PHONY: install vendor book test test-lib test-notebooks test-book notebooks serve bench clean

$(STAMP): requirements.txt pyproject.toml
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $(STAMP)

install: $(STAMP)

vendor:
	@bash tools/fetch_vendor.sh

book: install vendor
	$(JB) build . -W -n --keep-going
	@echo "The book is in $(CURDIR)/_build/html/index.html"

test: install vendor test-lib test-notebooks test-book

test-lib: install
	$(PY) -m pytest tests -q

test-notebooks: install
	$(PY) tools/notebooks.py check
	$(PY) -m pytest $(NBVAL) -q $$($(PY) tools/notebooks.py list)

test-book: install vendor
	rm -rf _build
	$(JB) build . -W -n --keep-going

notebooks: install
	$(PY) tools/notebooks.py execute $(NB)

serve:
	@echo "Serving _build/html on http://localhost:8000 (Ctrl-C stops)"
	$(PY) -m http.server 8000 --bind 127.0.0.1 --directory _build/html

bench: install
	$(PY) benchmarks/run.py

clean:
	rm -rf _build _vendor _assignments _screenshots
