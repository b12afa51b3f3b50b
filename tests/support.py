"""Fakes shared by the suites: Airflow's task state store and task instance in memory, Fuse's answers."""

from __future__ import annotations

from typing import Any

import pytest


class FakeStore:
    """Airflow 3.3's task state store, in memory: shared by the tries of one task instance."""

    def __init__(self, data: dict[str, Any] | None = None):
        self.data = dict(data or {})

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any, **kwargs: Any) -> None:
        self.data[key] = value

    def delete(self, key: str) -> None:
        self.data.pop(key, None)


class FakeTI:
    """A task instance whose own XComs are kept, and pulled back as after a deferral."""

    dag_id, task_id, run_id, map_index = "fuse_dag", "campaign", "manual__2026-11-30", -1

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value

    def xcom_pull(self, key: str) -> Any:
        return self.xcom.get(key)


def serve_xcom(monkeypatch: pytest.MonkeyPatch, ti: FakeTI) -> list[str]:
    """FuseCallsTrigger reads its calls' ids from ``ti``'s XComs, as in a triggerer; returns the keys read."""
    read: list[str] = []

    async def read_xcom(where: Any, key: str) -> Any:
        assert (where["dag_id"], where["task_id"], where["run_id"]) == (ti.dag_id, ti.task_id, ti.run_id)
        read.append(key)
        return ti.xcom.get(key)

    monkeypatch.setattr("airflow_provider_fuse.triggers.fuse.read_xcom", read_xcom)
    return read


def context(store: FakeStore | None = None) -> dict[str, Any]:
    """A task's context: a task instance, and the state store when given (Airflow 3.3+)."""
    ctx: dict[str, Any] = {"ti": FakeTI()}
    if store is not None:
        ctx["task_state_store"] = store
    return ctx


def logged(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> str:
    """Airflow's structlog setup prints to stdout; plain logging goes to caplog."""
    return capsys.readouterr().out + caplog.text


def status_body(status: str, attempts: str = "1") -> dict[str, Any]:
    """Fuse's status answer for a call to +16175551234 that reached ``status``."""
    return {
        "call_details": {
            "status": status,
            "attempts": attempts,
            "max_attempts": attempts,
            "phone_number": "'6175551234'",
            "events": [
                {"event": "queued", "timestamp": 1800000000},
                {"event": status, "timestamp": 1800000060},
            ],
        }
    }


def rendered(op: Any, values: dict[str, Any]) -> dict[str, Any]:
    """Give every template field of ``op`` a template, render them as Airflow does, return the results."""
    for name in op.template_fields:
        setattr(op, name, f"{{{{ v.{name} }}}}")
    op.render_template_fields({"v": values})
    return {name: getattr(op, name) for name in op.template_fields}
