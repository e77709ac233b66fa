# The two set-up commands: `make run` (the sandbox) and `make test` (the whole suite).
# Both create the venv, install pinned dependencies and Azurite on first use.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NODE_STAMP := node_modules/.bin/azurite-table

.PHONY: setup run test lint typecheck bench clean

# The browser test (tests/e2e/customers/test_ops_console.py) drives the system Chromium through
# Playwright (never `playwright install`); installed from the distribution when missing.
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

setup: $(STAMP) $(NODE_STAMP) $(CHROMIUM)

$(CHROMIUM):
	$(SUDO) apt-get install -y chromium || ($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

$(NODE_STAMP): package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

run: setup
	$(VENV)/bin/syncctl sandbox up

lint: setup
	$(VENV)/bin/ruff check .

# Strict mypy over shared/ (configuration: [tool.mypy] in pyproject.toml); must report zero errors.
typecheck: setup
	$(VENV)/bin/mypy

# pytest exits 5 when it collects no tests; that is a failure here too (nothing was verified).
test: setup lint typecheck
	$(VENV)/bin/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench: setup
	$(PY) -m benchmarks.ingress
	$(PY) -m benchmarks.brightpearl_client
	$(PY) -m benchmarks.dataverse_client
	$(PY) -m benchmarks.store
	$(PY) -m benchmarks.customers
	$(PY) -m benchmarks.latency
	$(PY) -m benchmarks.catalogue
	$(PY) -m benchmarks.orders
	$(PY) -m benchmarks.console
	$(PY) -m benchmarks.reconcile

clean:
	rm -rf $(VENV) node_modules .sandbox .cache benchmarks/results .pytest_cache .ruff_cache
