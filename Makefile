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
DOCS_STAMP := $(VENV)/.installed-docs
# The cluster suite's own venv: Airflow's celery and postgres extras downgrade two packages that
# `make test` runs with (python-dateutil, packaging), so they do not go into $(VENV). Celery 5.7
# dropped `retry` from celery.backends.database, which apache-airflow-providers-celery 3.26.0 (the
# newest) imports: every worker and the executor fail to load with it, hence celery<5.7.
CLUSTER_VENV ?= .venv-cluster
CLUSTER_STAMP := $(CLUSTER_VENV)/.installed-cluster-$(AIRFLOW_VERSION)
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages, one apt at a time: .ci/run's two lanes may both install something at once.
apt_install = $(SUDO) flock /tmp/airflow-provider-fuse-apt.lock sh -c \
	'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $(1)'

.PHONY: install test test-suite test-ui test-e2e test-cluster cluster-servers lint format demo bench docs dist clean

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
	$(BIN)/python -m pytest -q -p no:cacheprovider --ignore=tests/stack --ignore=tests/cluster tests

## test-e2e: the stack suite (tests/stack), and only it: Airflow as separate processes (scheduler,
## dag-processor, triggerer, api-server) driven through its REST API under faults and SIGKILLs, plus the
## fast fault tests against the simulator; figures printed at the end. Each test has its own limit
## (pytest-timeout); the whole run gets 30 minutes (about 6 on a quiet machine, two to three times
## that on a busy one). SIGINT (not SIGTERM) on timeout, so that pytest's teardown still stops every
## process it started.
test-e2e: $(STAMP)
	FUSE_E2E_STACK=1 timeout --signal=INT --kill-after=60 1800 $(BIN)/python -m pytest -q -p no:cacheprovider \
		--durations=10 tests/stack

## test-cluster: Airflow as production runs it (tests/cluster): PostgreSQL and Redis started as throwaway
## instances in a temporary directory, the CeleryExecutor with two Celery workers, two schedulers, two
## triggerers, the dag-processor and the api-server, each its own process, driven through the REST API
## while workers, a triggerer holding 200 waits and a 10,000-call campaign, a scheduler, PostgreSQL and
## Redis are killed or restarted; figures (calls doubled, outcomes lost, triggerer takeover) at the end.
## 11 minutes measured on 2 cores kept busy by other work; the whole run gets 25 (SIGINT, so that
## teardown still stops every process and both servers).
test-cluster: $(CLUSTER_STAMP) | cluster-servers
	FUSE_CLUSTER=1 timeout --signal=INT --kill-after=60 1500 $(CLUSTER_VENV)/bin/python -m pytest -q \
		-p no:cacheprovider --durations=10 tests/cluster

$(CLUSTER_STAMP): pyproject.toml
	@test -x $(CLUSTER_VENV)/bin/python || $(PYTHON) -m venv $(CLUSTER_VENV)
	$(CLUSTER_VENV)/bin/python -m pip install --disable-pip-version-check -e '.[test]' \
		"apache-airflow[celery,postgres]==$(AIRFLOW_VERSION)" "celery<5.7" asyncpg $(PINS) > $(CLUSTER_VENV)/pip.log 2>&1 \
		|| { tail -40 $(CLUSTER_VENV)/pip.log; exit 1; }
	$(CLUSTER_VENV)/bin/python -c "import airflow.providers.celery, psycopg2, asyncpg, redis, airflow_provider_fuse"
	@touch $@

# Debian's PostgreSQL and Redis (the multi-call binary of redis-tools; the suite names a symlink to it
# redis-server, so that no system service is installed or started). Installed when missing.
cluster-servers: | $(CLUSTER_STAMP)
	@ls /usr/lib/postgresql/*/bin/initdb > /dev/null 2>&1 && command -v redis-check-rdb > /dev/null || { \
		$(call apt_install,postgresql redis-tools); } > $(CLUSTER_VENV)/apt.log 2>&1 \
		|| { tail -40 $(CLUSTER_VENV)/apt.log; exit 1; }

## test-ui: the connection form, its Test button and the task view in headless chromium (Playwright).
## On another Airflow in its own venv: make test-ui VENV=.venv-af31 AIRFLOW_VERSION=3.1.8
test-ui: $(UI_STAMP) $(CHROMIUM)
	FUSE_UI_TESTS=1 FUSE_UI_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest -q -p no:cacheprovider tests/ui

$(UI_STAMP): $(STAMP)
	$(BIN)/python -m pip install --disable-pip-version-check -e '.[ui]' "apache-airflow==$(AIRFLOW_VERSION)" $(PINS) > $(VENV)/pip-ui.log 2>&1 || { tail -40 $(VENV)/pip-ui.log; exit 1; }
	@touch $@

# Debian's chromium package, driven through Playwright's executable_path: no browser download.
$(CHROMIUM): | $(STAMP)
	$(call apt_install,chromium) > $(VENV)/apt-chromium.log 2>&1 || { tail -40 $(VENV)/apt-chromium.log; exit 1; }

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

## docs: the docs site (Sphinx) into build/docs/html; every warning is an error, and the environment is
## rebuilt each time (-E), so a warning is never hidden by an earlier build.
docs: $(DOCS_STAMP)
	$(BIN)/python -m sphinx -b html -E -n -W --keep-going -q docs build/docs/html
	@echo "docs: build/docs/html/index.html"

$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --disable-pip-version-check -e '.[docs]' "apache-airflow==$(AIRFLOW_VERSION)" > $(VENV)/pip-docs.log 2>&1 || { tail -40 $(VENV)/pip-docs.log; exit 1; }
	@touch $@

## dist: the release files in dist/ (sdist, and the wheel built from it in a clean environment), checked
## by `twine check --strict` and tests/test_packaging.py (LICENSE, py.typed, metadata). Publishing and
## tagging are left to a person; the steps are printed at the end (see README, "Releasing").
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*
	FUSE_DIST_DIR=dist $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_packaging.py
	@version=$$($(BIN)/python -c "import airflow_provider_fuse as p; print(p.__version__)"); \
	grep -q "^## \[$$version\] - [0-9]" CHANGELOG.md || { echo "CHANGELOG.md has no dated entry for $$version"; exit 1; }; \
	echo; echo "dist/ is ready. To release $$version:"; \
	echo "  git tag -a v$$version -m 'airflow-provider-fuse $$version' && git push origin v$$version"; \
	echo "  $(BIN)/twine upload dist/*"

clean:
	rm -rf $(VENV) .venv-* .pytest_cache .mypy_cache .ruff_cache
