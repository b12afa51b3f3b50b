"""Which waits a callback resumes straight from the API server, and with what event."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_fuse.models import CallDetails
from airflow_provider_fuse.plugins.inbox import _Database
from airflow_provider_fuse.waiting import outcome_from_event
from tests.callback_support import NUMBER, body

CALL_TRIGGER = "airflow_provider_fuse.triggers.fuse.FuseCallTrigger"


def task_instance(state: str = "deferred", classpath: str = CALL_TRIGGER, call_id: str = "42") -> Any:
    trigger = SimpleNamespace(classpath=classpath, kwargs={"call_id": call_id})
    return SimpleNamespace(state=state, next_method="execute_complete", trigger=trigger)


@pytest.fixture
def submitted(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, Any]]:
    import airflow.models.trigger

    calls: list[tuple[Any, Any]] = []
    monkeypatch.setattr(
        airflow.models.trigger,
        "handle_event_submit",
        lambda event, *, task_instance, session: calls.append((event.payload, task_instance)),
    )
    return calls


def test_a_deferred_single_call_wait_resumes_with_the_triggers_own_event(submitted: list[Any]) -> None:
    ti = task_instance()
    assert _Database(session=None).resume(ti, CallDetails.from_api(body()))  # type: ignore[arg-type]
    ((event, resumed),) = submitted
    assert resumed is ti
    assert (event["status"], event["call_id"]) == ("completed", "42")
    assert NUMBER not in str(event)
    assert outcome_from_event(event)["status"] == "completed"  # what execute_complete decides


@pytest.mark.parametrize(
    ("ti", "details"),
    [
        pytest.param(task_instance(state="running"), body(), id="not-deferred-yet"),
        pytest.param(task_instance(classpath=CALL_TRIGGER + "s"), body(), id="a-campaign"),
        pytest.param(task_instance(), body(status="dialing"), id="not-ended"),
        pytest.param(task_instance(), body(call_id="41"), id="another-call"),
        pytest.param(
            SimpleNamespace(state="deferred", next_method="execute_complete", trigger=None),
            body(),
            id="no-trigger",
        ),
    ],
)
def test_anything_else_is_left_to_the_record(submitted: list[Any], ti: Any, details: dict[str, Any]) -> None:
    assert not _Database(session=None).resume(ti, CallDetails.from_api(details))  # type: ignore[arg-type]
    assert submitted == []
