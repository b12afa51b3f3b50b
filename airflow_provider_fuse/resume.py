"""What a task remembers across its tries, so that a retry resumes instead of re-dialing.

Backed by Airflow 3.3's task state store (``context["task_state_store"]``). On older Airflow there
is no such store: the memory is empty, and ``available`` is False so callers can say what that
costs (a retried task queues again).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Context

#: Logged once per task when the store is missing.
NOT_PROTECTED = (
    "This Airflow has no task state store (it arrived in Airflow 3.3): if this try fails after "
    "queueing, a retry cannot find the call and will queue a NEW one. Upgrade to Airflow 3.3+ for "
    "retry-safe calls, or set retries=0."
)


class TaskMemory:
    """Small JSON values kept per task instance across tries."""

    def __init__(self, context: Context):
        self._store: Any = context.get("task_state_store")

    @property
    def available(self) -> bool:
        return self._store is not None

    def get(self, key: str) -> Any:
        return self._store.get(key) if self._store is not None else None

    def set(self, key: str, value: Any) -> None:
        if self._store is not None:
            self._store.set(key, value)

    def delete(self, key: str) -> None:
        if self._store is not None:
            self._store.delete(key)
