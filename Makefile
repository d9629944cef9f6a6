# Set-up and the two commands the README starts with. Each target makes its own virtualenv.
# The core (BM25 world) installs without torch; targets that need torch install the pinned CPU
# build first (constraints.txt).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: setup demo test lint bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.core: pyproject.toml | $(VENV)/bin/python
	$(PIP) install --quiet -c constraints.txt -e ".[test]"
	touch $@

setup: $(VENV)/.core

demo: setup
	$(VENV)/bin/recgym demo

test: setup
	$(PY) -m pytest -q

lint: setup
	$(PIP) install --quiet ruff
	$(VENV)/bin/ruff check recgym tests bench baselines

bench: setup
	$(PIP) install --quiet -c constraints.txt -e ".[bench]"
	$(PY) bench/bm25.py
	$(PY) bench/env_score.py

clean:
	rm -rf $(VENV) build dist *.egg-info
