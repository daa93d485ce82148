# Every target bootstraps what it needs on a fresh machine (Python 3.11+ with venv).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck bench clean

install: $(STAMP)

$(STAMP): pyproject.toml core/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/pip install --quiet -e './core[postgres,otel]' --group dev
	touch $(STAMP)

demo: install
	$(BIN)/tether demo

lint: install
	$(BIN)/ruff check core tests bench
	$(BIN)/ruff format --check core tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

bench: install
	$(BIN)/python bench/engine.py

clean:
	rm -rf $(VENV) .tether .pytest_cache .mypy_cache .ruff_cache .hypothesis
