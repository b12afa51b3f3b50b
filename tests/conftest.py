"""Test settings: a throwaway AIRFLOW_HOME, set before anything imports Airflow; shared fixtures."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from tests import figures

if TYPE_CHECKING:
    from airflow_provider_fuse.testing import FuseSimulator

os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="fuse-tests-airflow-home-")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"

FUSE_URL = "https://fuse.test/api"
LOGIN = "ops@example.com"
DEVELOPER_KEY = "dk-SECRET-4242"
#: Real seconds a wait that should end at once (or at a deadline well under a second) may take on a
#: busy machine before the test calls it a hang: far above need, far below any poll a regression waits.
HANG = 30.0

T = TypeVar("T")


async def within(seconds: float, awaitable: Awaitable[T], what: str) -> T:
    """Await ``awaitable`` for at most ``seconds``: a wait that ignores its deadline fails, never hangs."""
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except asyncio.TimeoutError:
        raise AssertionError(f"{what} was still waiting after {seconds:g} s: it never ended") from None


@pytest.fixture
def fuse_conn(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A `fuse_default` connection pointing at a mocked Fuse host; retries without waiting."""
    from airflow_provider_fuse.hooks.fuse import FuseHook

    monkeypatch.setattr(FuseHook, "backoff", 0)
    conn = {"conn_type": "fuse", "host": FUSE_URL, "login": LOGIN, "password": DEVELOPER_KEY}
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", json.dumps(conn))
    return conn


@pytest.fixture
def sim(fuse_simulator: FuseSimulator, monkeypatch: pytest.MonkeyPatch) -> FuseSimulator:
    """The shipped ``fuse_simulator`` (600x speed) behind `fuse_default`; retries without waiting."""
    from airflow_provider_fuse.hooks.fuse import FuseHook

    monkeypatch.setattr(FuseHook, "backoff", 0)
    for name, value in fuse_simulator.connection_env().items():
        monkeypatch.setenv(name, value)
    return fuse_simulator


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """What the fault, crash and fuzz suites exercised (tests/figures.py), when they ran."""
    figures.report(lambda line: terminalreporter.write_line(f"fuse figures: {line}"))


@pytest.fixture
def no_polling_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lift the polling floor and the rate ceiling, for tests that poll a mocked remote Fuse quickly.

    The limits themselves are tested in tests/attack/test_bad_input.py and tests/unit/test_validation.py.
    """
    from airflow_provider_fuse import validation

    monkeypatch.setattr(validation, "MIN_POLL_INTERVAL", 0.0)
    monkeypatch.setattr(validation, "MAX_REQUESTS_PER_SECOND", float("inf"))
