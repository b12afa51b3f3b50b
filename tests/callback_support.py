"""The callback route over a fake database (a dict of XCom values per task instance): shared by
tests/unit/plugins and tests/attack. Import the fixtures ``database`` and ``client`` where needed."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from airflow_provider_fuse.callback_token import CallbackPurpose, make_token
from airflow_provider_fuse.models import CallDetails

SECRET = "test-callback-secret-" + "x" * 24
PURPOSE = CallbackPurpose("fuse_default", "1234", "5678", "reminders", "manual__1", "call", -1)
NUMBER = "16175550123"
_REAL_ASLEEP = asyncio.sleep
PCI_VALUE = "4111111111111111"


def body(status: str = "completed", **extra: Any) -> dict[str, Any]:
    """A callback's call_details as Fuse's documented status sample writes them."""
    return {
        "max_attempts": "1",
        "attempts": "1",
        "events": [
            {"event": "queued", "timestamp": 1475095892},
            {"event": "connected", "timestamp": 1475095925},
        ],
        "phone_number": f"'{NUMBER}'",
        "status": status,
        "queued_timestamp": "1475095892",
        "start_timestamp": "1475095925",
        "end_timestamp": "1475095928",
        "reattempt_wait": "300",
        "duration": 3,
        **extra,
    }


@dataclass
class FakeDatabase:
    """XCom rows per (task instance, key), the task instances that exist, and what was triggered."""

    task_instances: set[tuple[str, str, str, int]] = field(default_factory=set)
    xcom: dict[tuple[tuple[str, str, str, int], str], Any] = field(default_factory=dict)
    resumed: list[CallDetails] = field(default_factory=list)
    asset_events: list[dict[str, Any]] = field(default_factory=list)

    def snapshot(self) -> str:
        return json.dumps([sorted(map(str, self.xcom.items())), len(self.resumed), self.asset_events])

    @staticmethod
    def _ti(purpose: CallbackPurpose) -> tuple[str, str, str, int]:
        return (purpose.dag_id, purpose.run_id, purpose.task_id, purpose.map_index)

    def task_instance(self, purpose: CallbackPurpose) -> Any:
        return self._ti(purpose) if self._ti(purpose) in self.task_instances else None

    def get(self, purpose: CallbackPurpose, key: str) -> Any:
        return copy.deepcopy(self.xcom.get((self._ti(purpose), key)))

    def set(self, purpose: CallbackPurpose, key: str, value: Any) -> None:
        self.xcom[(self._ti(purpose), key)] = json.loads(json.dumps(value))  # what a JSON column keeps

    def resume(self, ti: Any, details: CallDetails) -> bool:
        self.resumed.append(details)
        return True

    def emit_asset_event(self, purpose: CallbackPurpose, ti: Any, details: CallDetails) -> bool:
        self.asset_events.append({"call": details.to_dict(), "fuse_conn_id": purpose.conn_id})
        return True


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch) -> FakeDatabase:
    """The fake database behind the route, a `fuse_default` connection with a callback_secret, and
    the task instance of PURPOSE."""
    from airflow_provider_fuse.plugins import inbox

    fake = FakeDatabase(task_instances={FakeDatabase._ti(PURPOSE)})

    @contextmanager
    def database() -> Iterator[FakeDatabase]:
        yield fake

    monkeypatch.setattr(inbox, "database", database)
    conn = {
        "conn_type": "fuse",
        "host": "https://fuse.test/api",
        "login": "ops@example.com",
        "password": "dk-SECRET-4242",
        "extra": {"callback_secret": SECRET},
    }
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", json.dumps(conn))
    return fake


@pytest.fixture
def client(database: FakeDatabase) -> Iterator[Any]:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from airflow_provider_fuse.plugins.app import create_app

    root = FastAPI()
    root.mount("/fuse", create_app())  # as Airflow's init_plugins mounts it
    with TestClient(root) as test_client:
        yield test_client


def url(purpose: CallbackPurpose = PURPOSE, secret: str = SECRET) -> str:
    return f"/fuse/callbacks/{make_token(purpose, secret)}"


class FakeClock:
    """Time for a wait under test: ``time()``/``monotonic()`` read it, ``sleep`` moves it at once.

    Patch it in as a module's ``time`` (and its ``asyncio.sleep`` with :meth:`asleep`): no real waiting.
    """

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    monotonic = time

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += max(0.0, seconds)

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await _REAL_ASLEEP(0)  # let the loop run: a real wait's only observable effect


def recorded_callbacks(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """XCom values as the plugin writes them for ``entries`` (call_details dicts, oldest first)."""
    from airflow_provider_fuse.callbacks import CHUNK_SIZE, HEAD_KEY, chunk_key

    values: dict[str, Any] = {HEAD_KEY: {"count": len(entries)}}
    for seq, details in enumerate(entries):
        values.setdefault(chunk_key(seq // CHUNK_SIZE), []).append(
            {"seq": seq, "received_at": "2026-11-30T12:00:00+00:00", "details": details, "phone_digest": None}
        )
    return values
