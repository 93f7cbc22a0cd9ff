# logserver — the two commands that matter: `make dev` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV  ?= .venv
PY    := $(VENV)/bin/python
CACHE ?= $(HOME)/.cache/logserver
UV    := $(CACHE)/uv/bin/uv
# What ruff checks and formats (its rules: pyproject.toml [tool.ruff]).
LINT_PATHS := services tests scripts benchmarks
export LOGSERVER_CACHE_DIR := $(CACHE)

.PHONY: help install dev test test-unit test-deploy test-integration lint fmt lock benchmark provision clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

$(UV):
	python3 -m venv $(CACHE)/uv
	$(CACHE)/uv/bin/pip install -q --disable-pip-version-check uv

$(VENV)/.installed: requirements.lock pyproject.toml | $(UV)
	$(UV) venv -q --allow-existing --python python3 $(VENV)
	$(UV) pip sync -q --python $(PY) requirements.lock
	$(UV) pip install -q --python $(PY) --no-deps -e .
	@touch $@

install: $(VENV)/.installed ## create .venv with the locked dependencies

lock: | $(UV) ## re-resolve requirements.lock from pyproject.toml
	$(UV) pip compile -q pyproject.toml --extra dev --extra devstack --extra bench -o requirements.lock --python-version 3.11
	$(UV) pip compile -q pyproject.toml -o requirements.runtime.lock --python-version 3.11

provision: install ## fetch/build the backends into $(CACHE) (idempotent)
	$(PY) -m services.cli provision

dev: install ## run the whole system: backends, five services, gateway on :8080
	$(PY) -m services.cli dev

test: install ## unit + integration tests on their own backends and free ports
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(PY) -m services.cli provision
	PY=$(PY) bash scripts/k8s-validate.sh
	$(PY) -m pytest tests --durations=10

test-unit: install
	$(PY) -m pytest tests/unit

test-deploy: install
	$(PY) -m pytest tests/deploy

test-integration: install
	$(PY) -m pytest tests/integration

lint: install ## ruff
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)

fmt: install
	$(VENV)/bin/ruff check --fix $(LINT_PATHS)
	$(VENV)/bin/ruff format $(LINT_PATHS)

benchmark: install ## load scenarios against a stack (SCENARIO=bulk for one, a comma list for some); results in benchmarks/results/
	$(PY) -m benchmarks.harness $(if $(SCENARIO),--scenario $(SCENARIO),) $(BENCH_ARGS)

clean: ## remove runtime data (keeps the tool cache)
	rm -rf .data

include k8s/make.mk
