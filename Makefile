# genai-stack: the README names two targets, `make synth` and `make test`; both install what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BOOT ?= python3
PROFILE ?= managed-api
VENV := .venv
CHECKOV_VENV := .venv-checkov
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
CDK := node_modules/.bin/cdk
UV_VERSION := 0.13.9
CHECKOV_VERSION := 3.3.30

# Node 20 prints an end-of-life banner on every jsii import.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
# Bytecode caches (__pycache__, gitignored) for the project's modules and pytest's rewritten tests:
# without them every run, and every synthesis process a test starts, compiles them again.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help setup synth synth-all test lint format schema bench gateway-local clean docs-alarms docs-cost docs-security data-regions lock

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# pyproject.toml gives the library's dependency ranges; requirements.lock the exact versions this
# repository is built and tested with (`make lock` regenerates it after a change to pyproject.toml).
$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) pip install --quiet --python $(PY) --compile-bytecode -c requirements.lock -e '.[dev]'
	touch $@

lock: $(VENV)/.installed ## pin every Python dependency of '.[dev]' in requirements.lock (keeps the pins it can)
	$(UV) pip compile --quiet pyproject.toml --extra dev --extra lambdas --python-version 3.11.7 \
		--custom-compile-command "make lock" -o requirements.lock

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# checkov pins old boto3/packaging/networkx: it gets its own environment, apart from the pins in pyproject.toml.
$(CHECKOV_VENV)/.installed: $(VENV)/.installed
	$(UV) venv --quiet --allow-existing --python $(PY) $(CHECKOV_VENV)
	$(UV) pip install --quiet --python $(CHECKOV_VENV)/bin/python --compile-bytecode checkov==$(CHECKOV_VERSION)
	touch $@

setup: $(VENV)/.installed node_modules/.installed $(CHECKOV_VENV)/.installed ## create the Python, Node and checkov environments

synth: $(VENV)/.installed node_modules/.installed ## synthesize PROFILE (default managed-api) into cdk.out and list its stacks
	$(CDK) synth --quiet -c profile=$(PROFILE)
	$(CDK) list --app cdk.out

synth-all: $(VENV)/.installed node_modules/.installed ## synthesize every built-in profile
	$(CDK) synth --quiet -c profile=all

test: setup ## lint, then the whole test suite (compliance gates included)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest

docs-cost: $(VENV)/.installed ## regenerate docs/profiles/*.md's idle-cost tables, genai-stack profiles' figures and docs/regions.md's table
	WRITE_COST_DOCS=1 $(PY) -m pytest -q tests/cli/test_cost_docs.py tests/evaluation/test_plan.py::test_the_evaluation_page_shows_managed_api_s_plan tests/stacks/test_regions.py::test_the_region_page_shows_the_table

data-regions: $(VENV)/.installed ## regenerate stacks/data/regions.json from cfn-lint's copy of the CloudFormation registry
	WRITE_REGIONS=1 $(PY) -m pytest -q tests/stacks/test_regions.py::test_the_region_table_is_cfn_lint_s_registry_for_the_types_the_profiles_use

docs-security: $(VENV)/.installed ## regenerate docs/security.md's accepted exceptions from the code
	WRITE_SECURITY_DOCS=1 $(PY) -m pytest -q tests/compliance/test_security_docs.py::test_the_page_lists_every_accepted_exception_in_the_code

docs-alarms: $(VENV)/.installed ## regenerate docs/operations.md's alarm table from the templates and the signal contract
	WRITE_ALARM_DOCS=1 $(PY) -m pytest -q tests/signals/test_alarm_docs.py

lint: $(VENV)/.installed ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

schema: $(VENV)/.installed ## regenerate profiles/profile.schema.json from the profile models (stacks/profile/)
	$(PY) -m genai_stack.config --write-schema

bench: setup ## benchmarks: synth time per profile; gateway overhead, cold start and cache path; upstream connections
	$(PY) bench/synth.py
	$(PY) bench/gateway.py
	$(PY) bench/upstream.py

GATEWAY_CONFIG_FILE ?= lambdas/gateway/local-config.json
GATEWAY_PORT ?= 8080
GATEWAY_FLAGS ?= --echo
gateway-local: $(VENV)/.installed ## serve the model gateway on localhost (GATEWAY_FLAGS= to call real models)
	$(PY) -m lambdas.gateway.local --config $(GATEWAY_CONFIG_FILE) --port $(GATEWAY_PORT) $(GATEWAY_FLAGS)

clean: ## remove synthesized output and environments
	rm -rf cdk.out $(VENV) $(CHECKOV_VENV) node_modules .pytest_cache .ruff_cache
