"""The cluster suite runs only under ``make test-cluster`` (``FUSE_CLUSTER=1``), in its own venv.

It needs Airflow's celery and postgres extras, PostgreSQL and Redis, which ``make test-cluster``
installs; anywhere else its tests are skipped with that reason. It times itself (figures' wall time).
"""

from __future__ import annotations

import os
import time

import pytest

from tests import figures

CLUSTER_ENV = "FUSE_CLUSTER"
_STARTED = time.monotonic()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get(CLUSTER_ENV) == "1":
        return
    skip = pytest.mark.skip(
        reason=f"PostgreSQL, Redis and Celery: run `make test-cluster` (sets {CLUSTER_ENV}=1)"
    )
    for item in items:
        if "tests/cluster/" in item.nodeid:
            item.add_marker(skip)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if figures.CLUSTER["scenarios"]:
        figures.CLUSTER["wall_seconds"] = round(time.monotonic() - _STARTED, 1)
