# The two commands of the README: `make demo` and `make test`. Both create .venv on first use.
# `make lint`: black and ruff as configured in pyproject.toml, then the import layers
# (lint-imports, setup.cfg [importlinter]); `make test-fast`: the tests not marked slow.
# `make bench`: the benchmark suite of benchmarks/ (not installed; `mindface-au bench` times the installed backends).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test test-fast lint format bench clean

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed setup.py
	$(PY) -m pip install -q -e ".[torch,dev,onnx,video,pandas]"
	touch $@

# demo: train and evaluate on SynthAU, then write two MP4 clips and detect AUs in the scene clip (CSV + HTML report)
demo: $(VENV)/.installed
	$(VENV)/bin/mindface-au demo --out runs/demo
	$(VENV)/bin/mindface-au synth --clips --out runs/demo/clips --overwrite
	$(VENV)/bin/mindface-au detect --model runs/demo/run/checkpoints/best.ckpt --input runs/demo/clips/scene.mp4 \
		--all-faces --out runs/demo/scene.csv --report runs/demo/scene.html --overwrite

# test: 2 worker processes (pytest-xdist); idle workers take tests from the busy one (worksteal)
test: $(VENV)/.installed-dev
	$(PY) -m pytest -q -n 2 --dist worksteal --durations=25 tests

# test-fast: the suite without the system tests marked slow (pytest -m "not slow"): no training run, no msrun
test-fast: $(VENV)/.installed-dev
	$(PY) -m pytest -q -m "not slow" --durations=10 tests

lint: $(VENV)/.installed-dev
	$(PY) -m black --check mindface_au benchmarks tools tests
	$(VENV)/bin/ruff check mindface_au benchmarks tools tests
	$(VENV)/bin/lint-imports

format: $(VENV)/.installed-dev
	$(PY) -m black mindface_au benchmarks tools tests
	$(VENV)/bin/ruff check --fix --select I mindface_au benchmarks tools tests

bench: $(VENV)/.installed-dev
	$(PY) -m benchmarks --quick --cache runs/bench-cache

clean:
	rm -rf runs build *.egg-info
