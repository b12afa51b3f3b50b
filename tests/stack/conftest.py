"""Fixtures of the stack suite: the shipped simulator behind ``fuse_default`` with short timeouts.

``make test-e2e`` runs this folder, and only it: the fast fault tests, then the tests marked ``stack``
that need the multi-process Airflow (it sets ``FUSE_E2E_STACK=1``; elsewhere they are skipped with
that reason). ``make test`` leaves the folder out, so that each suite runs once.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from airflow_provider_fuse.testing import FuseSimulator

STACK_ENV = "FUSE_E2E_STACK"
#: Connection extras that keep faults fast: one request waits at most REQUEST_TIMEOUT seconds.
REQUEST_TIMEOUT = 0.5
RETRY_LIMIT = 3
#: Hook backoff in the fast tests (seconds, doubled per try, with jitter).
BACKOFF = 0.05


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "stack: needs the multi-process Airflow stack (make test-e2e)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get(STACK_ENV) == "1":
        return
    skip = pytest.mark.skip(reason=f"multi-process Airflow stack: run `make test-e2e` (sets {STACK_ENV}=1)")
    for item in items:
        if item.get_closest_marker("stack"):  # a marker, not the keyword: this folder is named stack too
            item.add_marker(skip)


def connection(sim: FuseSimulator, **extra: Any) -> str:
    """An Airflow connection (JSON form) for ``sim`` with short timeouts; ``extra`` overrides them."""
    return json.dumps(
        {
            "conn_type": "fuse",
            "host": f"http://127.0.0.1:{sim.port}/api",
            "login": sim.login,
            "password": sim.password,
            "extra": {"request_timeout": REQUEST_TIMEOUT, "retry_limit": RETRY_LIMIT, **extra},
        }
    )


@pytest.fixture
def live(fuse_simulator: FuseSimulator, monkeypatch: pytest.MonkeyPatch) -> FuseSimulator:
    """The shipped ``fuse_simulator`` (speed 600) behind ``fuse_default``: short timeouts, fast backoff.

    A test may stop and start it: it comes back on the same port, so the connection stays valid.
    """
    from airflow_provider_fuse.hooks.fuse import FuseHook

    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection(fuse_simulator))
    monkeypatch.setattr(FuseHook, "backoff", BACKOFF)
    return fuse_simulator
