# Every target bootstraps what it needs on a fresh machine (Python 3.11+ with venv).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install chromium demo test lint typecheck bench chaos clean

install: $(STAMP) chromium

# The web inbox's browser tests drive Debian's Chromium (Playwright uses it as it is).
chromium:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium; fi; }

$(STAMP): pyproject.toml core/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/pip install --quiet -e './core[postgres,otel]' --group dev
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tether demo

lint: $(STAMP)
	$(BIN)/ruff check core tests bench
	$(BIN)/ruff format --check core tests bench
	$(BIN)/mypy

test: lint chromium
	$(BIN)/pytest

# The long forms of the chaos and fuzz suites (their short forms run in make test).
chaos: $(STAMP) chromium
	TETHER_CHAOS_SECONDS=300 $(BIN)/pytest -s -o timeout=3600 tests/chaos
	TETHER_FUZZ_EXAMPLES=100 $(BIN)/pytest -o timeout=3600 tests/core/server/test_schemathesis.py
	TETHER_HYPOTHESIS_EXAMPLES=500 $(BIN)/pytest -o timeout=3600 tests/core/test_concurrency.py

bench: $(STAMP)
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/http.py
	$(BIN)/python bench/postgres.py
	$(BIN)/python bench/mesh.py

clean:
	rm -rf $(VENV) .tether .pytest_cache .mypy_cache .ruff_cache .hypothesis
