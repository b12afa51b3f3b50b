# `make demo` and `make test` work on a bare machine: they create the virtualenv when it is missing.
PYTHON ?= python3
VENV ?= .venv
AIRFLOW_VERSION ?= 3.3.2
# Extra requirements installed next to Airflow. Airflow 3.2.x leaves two of its own dependencies
# uncapped that break every task it runs (`airflow dags test` included): svcs 26 (its in-process
# execution API never gets its service registry, 'svcs_registry') and FastAPI 0.137+ (pydantic then
# refuses its TIStateUpdate schema, "needs a discriminator field"). Airflow 3.3.2 caps FastAPI itself.
AIRFLOW_PINS ?= $(if $(filter 3.2.%,$(AIRFLOW_VERSION)),svcs<26 fastapi<0.137)
PINS := $(foreach pin,$(AIRFLOW_PINS),"$(pin)")
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(AIRFLOW_VERSION)
UI_STAMP := $(VENV)/.installed-ui
BENCH_STAMP := $(VENV)/.installed-bench
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install test test-suite test-ui test-e2e lint format demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -e '.[test,dev]' "apache-airflow==$(AIRFLOW_VERSION)" $(PINS) > $(VENV)/pip.log 2>&1 || { tail -40 $(VENV)/pip.log; exit 1; }
	$(BIN)/python -c "import airflow_provider_fuse, airflow, aiohttp, pytest"
	@touch $@

## test: lint, type-check and run every suite but the stack: tests/unit (fuzz included), tests/simulator,
## tests/dags (`airflow dags test` end to end, hygiene included) and tests/attack. tests/ui needs `make test-ui`.
test: lint test-suite

test-suite: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider --ignore=tests/stack tests

## test-e2e: the stack suite (tests/stack), and only it: Airflow as separate processes (scheduler,
## dag-processor, triggerer, api-server) driven through its REST API under faults and SIGKILLs, plus the
## fast fault tests against the simulator; figures printed at the end. Each test has its own limit
## (pytest-timeout); the whole run gets 30 minutes (about 6 on a quiet machine, two to three times
## that on a busy one). SIGINT (not SIGTERM) on timeout, so that pytest's teardown still stops every
## process it started.
test-e2e: $(STAMP)
	FUSE_E2E_STACK=1 timeout --signal=INT --kill-after=60 1800 $(BIN)/python -m pytest -q -p no:cacheprovider \
		--durations=10 tests/stack

## test-ui: the connection form, its Test button and the task view in headless chromium (Playwright).
## On another Airflow in its own venv: make test-ui VENV=.venv-af31 AIRFLOW_VERSION=3.1.8
test-ui: $(UI_STAMP) $(CHROMIUM)
	FUSE_UI_TESTS=1 FUSE_UI_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest -q -p no:cacheprovider tests/ui

$(UI_STAMP): $(STAMP)
	$(BIN)/python -m pip install --disable-pip-version-check -e '.[ui]' "apache-airflow==$(AIRFLOW_VERSION)" $(PINS) > $(VENV)/pip-ui.log 2>&1 || { tail -40 $(VENV)/pip-ui.log; exit 1; }
	@touch $@

# Debian's chromium package, driven through Playwright's executable_path: no browser download.
$(CHROMIUM): | $(STAMP)
	{ $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; } > $(VENV)/apt-chromium.log 2>&1 || { tail -40 $(VENV)/apt-chromium.log; exit 1; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## demo: the example DAG places and tracks a call against the built-in Fuse simulator
demo: $(STAMP)
	$(BIN)/python -m airflow_provider_fuse.testing.demo

## bench: every benchmarks/*.py prints its table (never part of make test)
bench: $(BENCH_STAMP)
	@for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --disable-pip-version-check -e '.[test,bench]' "apache-airflow==$(AIRFLOW_VERSION)" $(PINS) > $(VENV)/pip-bench.log 2>&1 || { tail -40 $(VENV)/pip-bench.log; exit 1; }
	@touch $@

clean:
	rm -rf $(VENV) .venv-* .pytest_cache .mypy_cache .ruff_cache
