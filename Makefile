# Two entry points: `make run` (quickstart benchmark) and `make test` (whole suite against real local servers).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
AZURITE := .emulators/node_modules/azurite/dist/src/blob/main.js

.PHONY: run test lint install install-test fault-table

run: $(VENV)/.installed
	scripts/netns-run $(PY) -m sbench run workloads/quickstart.yaml

test: $(VENV)/.installed-test $(AZURITE)
	$(VENV)/bin/ruff check sbench tests bench
	scripts/netns-run env RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0 $(PY) -m pytest -n 2 $(PYTEST_ARGS)

# The fault-injection suite alone, then docs/faults.md from what each scenario observed (exit code: pytest's).
fault-table: $(VENV)/.installed-test $(AZURITE)
	scripts/netns-run env RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0 $(PY) -m tests.faults.table

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check sbench tests bench

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed: $(VENV)/bin/python pyproject.toml
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/bin/python pyproject.toml
	$(PY) -m pip install -q -e '.[test]'
	scripts/install-browser
	touch $(VENV)/.installed $@

$(AZURITE):
	mkdir -p .emulators
	cd .emulators && npm install --no-audit --no-fund --silent azurite@3.35.0
