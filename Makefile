# authgate: `make test` and `make demo` set up everything they need (Python venv, node_modules) and are idempotent.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.authgate-installed
NODE_STAMP := sandbox/node_modules/.authgate-installed
CDK_CLI_STAMP := node_modules/.authgate-installed
# checkov pins its own dependency tree; it lives in a separate venv so it cannot move the project's pins.
CHECKOV_VENV := .venv-checkov
CHECKOV_VERSION := 3.3.30
# Named after the version (defined above: := expands now), so bumping the pin reinstalls checkov.
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)

export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := true
export CDK_DISABLE_NOTICES := true

.PHONY: setup test demo local bench lint clean

setup: $(PY_STAMP) $(NODE_STAMP) $(CDK_CLI_STAMP) $(CHECKOV_STAMP)

$(PY_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -qq --disable-pip-version-check -e '.[aws,gcp,azure,dev,serve]'
	touch $@

$(NODE_STAMP): sandbox/package.json sandbox/package-lock.json
	cd sandbox && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The AWS CDK CLI (npx cdk synth|deploy), pinned in the root package.json.
$(CDK_CLI_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(CHECKOV_STAMP):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -qq --disable-pip-version-check checkov==$(CHECKOV_VERSION)
	touch $@

lint: $(PY_STAMP)
	$(VENV)/bin/lint-imports

test: setup lint
	$(PY) -m pytest

demo: $(PY_STAMP) $(NODE_STAMP)
	$(PY) -m sandbox.demo

local: $(PY_STAMP) $(NODE_STAMP)
	$(PY) -m sandbox.demo --keep-running

bench: $(PY_STAMP) $(NODE_STAMP)
	$(PY) tests/bench/run_all.py

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules sandbox/node_modules cdk.out .pytest_cache
