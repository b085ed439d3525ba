# Oddly Odds — two commands on a fresh machine with Python 3.11:
#   make demo   runs the platform on embedded stores (simulator, Dagster UI + sensors)
#   make test   runs the whole test suite (what CI runs)
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The dbt manifest Dagster loads its dbt assets from; parsed here, never when Dagster loads the code.
MANIFEST := dbt_project/target/manifest.json
# every file of the dbt project but what dbt itself writes there
DBT_FILES := $(shell find dbt_project -type f -not -name '.*' -not -path 'dbt_project/target/*' \
	-not -path 'dbt_project/logs/*' -not -path 'dbt_project/dbt_packages/*')
PYTEST_ARGS ?=

.PHONY: install manifest demo test test-fast lint typecheck bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

$(MANIFEST): $(STAMP) $(DBT_FILES)
	$(BIN)/oddly dbt parse --quiet

manifest: $(MANIFEST)

install: $(STAMP) $(MANIFEST)

demo: install
	$(BIN)/oddly demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: install
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

bench: install
	$(BIN)/oddly bench ingest
	$(BIN)/oddly bench marts --ticks 10000000

clean:
	rm -rf .oddly .pytest_cache .mypy_cache .ruff_cache
