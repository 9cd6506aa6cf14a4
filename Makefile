# Two commands do everything: `make repro` and `make test`. Both first build
# the environment from uv.lock (only when it is missing or stale), so a fresh
# machine with Python 3.11+, git and make needs nothing else.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BOOT := .tools
UV_VERSION := 0.13.9
UV := $(BOOT)/bin/uv
STAMP := $(VENV)/.synced
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export UV_PYTHON_DOWNLOADS := never
export DVC_NO_ANALYTICS := 1

.PHONY: help env repro test lint typecheck unit clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(BOOT)
	$(BOOT)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	@touch $@

env: $(STAMP) ## create or refresh .venv from uv.lock

repro: env ## run the pipeline (dvc repro) on the configured data
	mlops recover
	dvc repro

lint: env ## ruff check, ruff format --check, mypy --strict on src
	ruff check src tests bench
	ruff format --check src tests bench
	mypy

# Test files run in parallel, one worker per core (pytest-xdist); a file's tests stay
# on one worker, so a module's expensive fixtures are built once. PYTEST_WORKERS=0
# runs them serially in this process.
PYTEST_WORKERS ?= auto

test: lint ## lint, then the whole test suite (in parallel, one worker per core)
	pytest -n $(PYTEST_WORKERS) --dist loadfile

clean: ## remove the environments (not data or models)
	rm -rf $(VENV) $(BOOT)
