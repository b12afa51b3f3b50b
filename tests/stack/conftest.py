"""Fixtures of the system suite: a live simulator on a fixed port, and the figures summary.

Tests marked ``stack`` need the multi-process Airflow (``make test-e2e`` sets ``FUSE_E2E_STACK=1``);
elsewhere (``make test``, the Airflow 3.1 run) they are skipped with that reason, while the fast
fault tests here run everywhere.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_fuse.testing import FuseSimulator
from tests import figures
from tests.stack.stack import DEVELOPER_KEY, LOGIN, free_ports

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
        if "stack" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    figures.report(lambda line: terminalreporter.write_line(f"fuse figures: {line}"))


def connection(sim: FuseSimulator, **extra: Any) -> str:
    """An Airflow connection (JSON form) for ``sim`` with short timeouts; ``extra`` overrides them."""
    return json.dumps(
        {
            "conn_type": "fuse",
            "host": f"http://127.0.0.1:{sim.port}/api",
            "login": LOGIN,
            "password": DEVELOPER_KEY,
            "extra": {"request_timeout": REQUEST_TIMEOUT, "retry_limit": RETRY_LIMIT, **extra},
        }
    )


@pytest.fixture
def live(monkeypatch: pytest.MonkeyPatch) -> Iterator[FuseSimulator]:
    """A running simulator (speed 600) that ``fuse_default`` points at: short timeouts, fast backoff."""
    from airflow_provider_fuse.hooks.fuse import FuseHook

    (port,) = free_ports(1)  # fixed, so that the simulator can be stopped and started again on it
    with FuseSimulator(speed=600.0, port=port, password=DEVELOPER_KEY) as sim:
        monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection(sim))
        monkeypatch.setattr(FuseHook, "backoff", BACKOFF)
        yield sim
