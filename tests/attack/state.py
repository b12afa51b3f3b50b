"""Airflow's task state store and task instance as the attacks need them: failing, expiring, cleared.

``StateStore`` keeps each key's expiry the way Airflow 3.3 computes it (``retention`` from the
writer, else ``[state_store] default_retention_days``; ``timedelta.max`` never expires) on a clock
the test moves, and ``clean()`` does what ``airflow state-store clean`` does. ``failing`` keys
raise on ``set()``, like an execution-API blip. ``TaskInstance`` carries ``try_number`` and
``max_tries``, which ``retry()`` and ``clear()`` change the way Airflow does.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from tests.support import FakeStore, FakeTI

DEFAULT_RETENTION = timedelta(days=30)
NEVER = timedelta.max


class ExecutionAPIError(RuntimeError):
    """What a task sees when the API server does not answer a state store request."""


class StateStore(FakeStore):
    def __init__(self, data: dict[str, Any] | None = None, *, failing: tuple[str, ...] = ()):
        super().__init__(data)
        self.now = datetime(2026, 6, 1, tzinfo=timezone.utc)
        self.expires: dict[str, datetime | None] = {key: self.now + DEFAULT_RETENTION for key in self.data}
        self.retentions: dict[str, Any] = {}
        self.failing = set(failing)
        self.writes: list[str] = []

    def set(self, key: str, value: Any, *, retention: timedelta | None = None, **kwargs: Any) -> None:
        self.writes.append(key)
        if key in self.failing:
            raise ExecutionAPIError(f"PUT task-state/{key}: 503 Service Unavailable")
        super().set(key, value)
        self.retentions[key] = retention
        kept = DEFAULT_RETENTION if retention is None else retention
        self.expires[key] = None if kept is NEVER else self.now + kept

    def clean(self) -> list[str]:
        """``airflow state-store clean``: delete every key whose expiry has passed."""
        gone = [
            key for key, at in self.expires.items() if at is not None and at < self.now and key in self.data
        ]
        for key in gone:
            self.delete(key)
        return gone


class TaskInstance(FakeTI):
    """A task instance with Airflow's try bookkeeping: ``retries`` as the task declares them."""

    def __init__(self, retries: int = 2):
        super().__init__()
        self.retries = retries
        self.try_number = 1
        self.max_tries = retries

    def retry(self) -> TaskInstance:
        """An automatic retry: the next try, ``max_tries`` unchanged; XComs cleared."""
        self.try_number += 1
        self.xcom = {}
        return self

    def clear(self) -> TaskInstance:
        """``clear_task_instances``: ``max_tries = try_number + retries``; the next run is one try on."""
        self.max_tries = self.try_number + self.retries
        self.try_number += 1
        self.xcom = {}
        return self


def context(store: StateStore, ti: TaskInstance) -> dict[str, Any]:
    return {"ti": ti, "task_state_store": store}
