# Every target bootstraps what it needs on a fresh machine (Python 3.11+ with venv).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Each adapter has its own environment with its framework (they cannot share one: see
# docs/decisions.md), holding tether (editable) and the adapter.
ADAPTERS := langgraph openai_agents crewai
ADAPTER_STAMPS := $(ADAPTERS:%=adapters/%/.venv/.installed)

.PHONY: install chromium demo test lint typecheck bench chaos compare clean

install: $(STAMP) $(ADAPTER_STAMPS) chromium

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

adapters/%/.venv/.installed: adapters/%/pyproject.toml core/pyproject.toml
	$(PYTHON) -m venv adapters/$*/.venv
	adapters/$*/.venv/bin/python -m pip install --quiet --upgrade "pip>=25.1"
	adapters/$*/.venv/bin/pip install --quiet -e './core[postgres]' -e ./adapters/$* \
	  --group adapters/$*/pyproject.toml:dev
	touch $@

demo: $(STAMP) $(ADAPTER_STAMPS)
	$(BIN)/tether demo
	adapters/langgraph/.venv/bin/python examples/langgraph_refund.py
	adapters/openai_agents/.venv/bin/python examples/openai_agents_payments.py
	adapters/crewai/.venv/bin/python examples/crewai_content_review.py

lint: $(STAMP) $(ADAPTER_STAMPS)
	$(BIN)/ruff check core adapters tests bench examples
	$(BIN)/ruff format --check core adapters tests bench examples
	$(BIN)/mypy
	for a in $(ADAPTERS); do \
	  adapters/$$a/.venv/bin/mypy --config-file adapters/$$a/pyproject.toml adapters/$$a/src || exit 1; \
	done

test: lint chromium
	$(BIN)/pytest
	for a in $(ADAPTERS); do \
	  adapters/$$a/.venv/bin/python -m pytest -c adapters/$$a/pyproject.toml --rootdir=. \
	    tests/adapters/$$a || exit 1; \
	done

# The long forms of the chaos and fuzz suites (their short forms run in make test).
chaos: $(STAMP) $(ADAPTER_STAMPS) chromium
	TETHER_CHAOS_SECONDS=300 $(BIN)/pytest -s -o timeout=3600 tests/chaos
	for a in $(ADAPTERS); do \
	  TETHER_CHAOS_SECONDS=300 adapters/$$a/.venv/bin/python -m pytest -s -o timeout=3600 \
	    -c adapters/$$a/pyproject.toml --rootdir=. tests/adapters/$$a/test_chaos.py || exit 1; \
	done
	TETHER_FUZZ_EXAMPLES=100 $(BIN)/pytest -o timeout=3600 tests/core/server/test_schemathesis.py
	TETHER_HYPOTHESIS_EXAMPLES=500 $(BIN)/pytest -o timeout=3600 tests/core/test_concurrency.py

bench: $(STAMP) $(ADAPTER_STAMPS)
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/http_load.py
	$(BIN)/python bench/postgres.py
	$(BIN)/python bench/mesh.py
	$(BIN)/python bench/scale.py
	adapters/langgraph/.venv/bin/python bench/langgraph.py
	adapters/openai_agents/.venv/bin/python bench/openai_agents.py
	adapters/crewai/.venv/bin/python bench/crewai.py

# tether side by side with DBOS and LangGraph's checkpointers (their own environment).
COMPARE := bench/.venv-compare
$(COMPARE)/.installed: bench/compare-requirements.txt core/pyproject.toml
	$(PYTHON) -m venv $(COMPARE)
	$(COMPARE)/bin/pip install --quiet -e './core[postgres]' -r bench/compare-requirements.txt
	touch $@

compare: $(COMPARE)/.installed
	$(COMPARE)/bin/python bench/compare.py

clean:
	rm -rf $(VENV) $(ADAPTERS:%=adapters/%/.venv) $(COMPARE) .tether .pytest_cache .mypy_cache .ruff_cache .hypothesis
