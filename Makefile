# One entry point for setup, the offline demo, tests, lint, synth and benchmarks.
# Every target installs what it needs from the project's own files.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
#: SDK 2.x cannot share the main venv (see requirements-sdk2.txt): its own, for its tests.
SDK2 := .venv-sdk2

# Offline, quiet and credential-free for every process we start (boto3 and the SageMaker
# toolkit must never probe the EC2 metadata address, CDK must not phone home).
export AWS_EC2_METADATA_DISABLED := true
export AWS_ACCESS_KEY_ID ?= testing
export AWS_SECRET_ACCESS_KEY ?= testing
export AWS_DEFAULT_REGION ?= us-east-1
export AWS_REGION ?= us-east-1
export CDK_DISABLE_VERSION_CHECK := 1
export CDK_DISABLE_CLI_TELEMETRY := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: setup demo local-train test test-fast test-loaded lint synth schema bench lock clean

# The checkout is installed editable (pyproject.toml, setuptools from the pinned files): notebooks
# and scripts run from anywhere import trainops.sdk, and `trainops` is a console script.
EDITABLE := install -q --no-deps --no-build-isolation -e .

$(BIN)/.installed: requirements.txt requirements-dev.txt training/requirements/local.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -r requirements-dev.txt -c constraints.txt
	$(BIN)/pip $(EDITABLE)
	touch $@

$(SDK2)/.installed: requirements-sdk2.txt constraints-sdk2.txt pyproject.toml
	test -x $(SDK2)/bin/python || $(PY) -m venv $(SDK2)
	$(SDK2)/bin/pip install -q -r requirements-sdk2.txt -c constraints-sdk2.txt
	$(SDK2)/bin/pip $(EDITABLE)
	touch $@

.venv-sdk2: $(SDK2)/.installed

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(BIN)/.installed node_modules/.installed
	@$(BIN)/python -m infra.node_runtime

## The README's main command: the whole workflow offline.
demo: setup
	$(BIN)/python -m trainops demo

## Training exactly as SageMaker runs it: 2 simulated hosts through the real toolkit.
local-train: setup
	$(BIN)/python -m trainops local-train --hosts 2 --processes-per-host 1

## The README's test command: lint + every test (slow ones included; SDK 2.x in its own venv).
test: setup $(SDK2)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q

## The inner loop: no multi-process tests (budget: 90 s).
test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

## The CI-like check: `make test` with a busy loop on every core beside it, RUNS times in a row
## (waits scale with TEST_TIME_SCALE, default 3; see tests/timing.py).
RUNS ?= 1
test-loaded: setup
	for run in $$(seq $(RUNS)); do echo "== loaded run $$run of $(RUNS)"; \
	  .ci/with-cpu-hog $(MAKE) --no-print-directory test || exit 1; done

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

synth: setup
	npx cdk synth --quiet

## Regenerate docs/cdk-training.schema.json from core/schema/stack.py (a test fails when stale).
schema: setup
	$(BIN)/python -m core.schema

## Re-resolve each image family's wheels (training/requirements/*.in -> *.lock); needs PyPI.
## PROJECT=DIR locks a user project's requirements.txt with them (DIR/requirements.<family>.lock).
lock: setup
	$(BIN)/python -m core.wheelhouse_lock $(if $(PROJECT),--project $(PROJECT))

## Every benchmark: each prints its side-by-side measurements and ratio.
bench: setup
	$(BIN)/python -m bench training
	$(BIN)/python -m bench synth
	$(BIN)/python -m bench wheelhouse
	$(BIN)/python -m bench donut
	$(BIN)/python -m bench sharding
	$(BIN)/python -m bench demo

clean:
	rm -rf cdk.out .runs .pytest_cache .ruff_cache
