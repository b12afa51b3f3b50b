"""QueueCallOperator and CancelPendingCallsOperator against requests-mock."""

from __future__ import annotations

import inspect
import json
import time
from typing import Any

import pytest
import requests
import requests_mock as rm
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_fuse.exceptions import (
    FuseCallFailed,
    FuseError,
    FuseRequestError,
    FuseValidationError,
    FuseWaitTimeout,
)
from airflow_provider_fuse.operators.fuse import CancelPendingCallsOperator, QueueCallOperator
from airflow_provider_fuse.resume import CALL_ID_KEY, QUEUE_SENT_KEY
from airflow_provider_fuse.triggers.fuse import FuseCallTrigger
from tests.conftest import FUSE_URL
from tests.support import FakeStore, context, logged, rendered, status_body

QUEUE_URL = f"{FUSE_URL}/apps/11/22/queue"


def operator(**kwargs: Any) -> QueueCallOperator:
    kwargs.setdefault("task_id", "call")
    kwargs.setdefault("application_id", 11)
    kwargs.setdefault("deployment_id", 22)
    kwargs.setdefault("phone_number", "+16175551234")
    kwargs.setdefault("poll_interval", 0.01)
    return QueueCallOperator(**kwargs)


pytestmark = pytest.mark.usefixtures("fuse_conn")


#: QueueCallOperator's parameters that say how to wait or where to connect, not what to call.
NOT_CALL_FIELDS = {
    "wait_for_completion",
    "deferrable",
    "poll_interval",
    "timeout",
    "redial_on_retry",
}


def test_every_call_field_is_templated_and_renders_and_variables_render_as_json() -> None:
    parameters = set(inspect.signature(QueueCallOperator.__init__).parameters) - {"self", "kwargs"}
    assert set(operator().template_fields) == parameters - NOT_CALL_FIELDS
    values = {
        "application_id": 11,
        "deployment_id": 22,
        "phone_number": "+16175551234",
        "caller_id": "+18009957586",
        "post_dial": "12#",
        "start_timestamp": "2026-12-01T09:00:00+00:00",
        "end_timestamp": "2026-12-01T12:00:00+00:00",
        "max_attempts": 3,
        "reattempt_wait": 600,
        "variables": '{"name": "Ann"}',
        "result_url": "https://example.com/fuse",
        "is_pci": True,
        "calling_hours": "09:00-20:00",
        "timezone": "America/New_York",
        "fuse_conn_id": "fuse_eu",
    }
    assert rendered(operator(), values) == {name: str(value) for name, value in values.items()}
    op = operator(variables={"name": "{{ v.name }}", "visits": ["{{ v.day }}"]})
    op.render_template_fields({"v": {"name": "Ann", "day": "Monday"}})
    assert op.variables == {"name": "Ann", "visits": ["Monday"]}  # values inside the dict too
    assert op.template_fields_renderers["variables"] == "json"


def test_calling_hours_are_templated_and_shape_the_window(capsys: pytest.CaptureFixture[str]) -> None:
    op = operator(calling_hours=("08:00", "21:00"), timezone="America/New_York", wait_for_completion=False)
    assert {"calling_hours", "timezone"} <= set(op.template_fields)
    with rm.Mocker() as m:
        m.post(QUEUE_URL, json={"call_id": 5})
        op.execute(context())
        form = m.request_history[0].body.decode()
    assert 'name="start_timestamp"' in form and 'name="end_timestamp"' in form


def test_sync_wait_returns_masked_details_and_pushes_the_call_id() -> None:
    ctx = context(FakeStore())
    with rm.Mocker() as m:
        m.post(QUEUE_URL, json={"call_id": 5})
        m.get(
            f"{FUSE_URL}/outbound/5", [{"json": status_body("dialing")}, {"json": status_body("completed")}]
        )
        result = operator().execute(ctx)
    assert result["status"] == "completed" and result["call_id"] == "5"
    assert result["phone_number"] == "61***234"
    assert ctx["ti"].xcom == {"call_id": "5"}
    assert ctx["task_state_store"].data == {CALL_ID_KEY: "5"}


def test_not_waiting_returns_the_call_id_only() -> None:
    with rm.Mocker() as m:
        m.post(QUEUE_URL, json={"call_id": 5})
        assert operator(wait_for_completion=False).execute(context()) == {"call_id": "5"}
        assert m.call_count == 1


def test_invalid_input_fails_before_any_request() -> None:
    with rm.Mocker() as m, pytest.raises(FuseValidationError, match="max_attempts"):
        operator(max_attempts=20).execute(context())
    assert m.call_count == 0


@pytest.mark.parametrize("status", ["failed", "rejected", "canceled"])
def test_unsuccessful_outcomes_fail_with_status_and_events(status: str) -> None:
    with rm.Mocker() as m, pytest.raises(FuseCallFailed, match=status) as info:
        m.post(QUEUE_URL, json={"call_id": 5})
        m.get(f"{FUSE_URL}/outbound/5", json=status_body(status, attempts="3"))
        operator().execute(context())
    assert "3 of 3" in str(info.value) and "last events" in str(info.value)


def test_timeout_fails_and_says_the_call_is_not_cancelled() -> None:
    with rm.Mocker() as m, pytest.raises(FuseWaitTimeout, match="NOT cancelled"):
        m.post(QUEUE_URL, json={"call_id": 5})
        m.get(f"{FUSE_URL}/outbound/5", json=status_body("dialing"))
        operator(timeout=0.05).execute(context())
    assert not any(r.method == "DELETE" for r in m.request_history)


def test_transient_status_errors_do_not_fail_the_wait() -> None:
    with rm.Mocker() as m:
        m.post(QUEUE_URL, json={"call_id": 5})
        m.get(f"{FUSE_URL}/outbound/5", [{"text": "garbage"}, {"json": status_body("completed")}])
        assert operator().execute(context())["status"] == "completed"


def test_deferrable_checks_once_then_defers_with_its_own_deadline() -> None:
    before = time.time()
    with rm.Mocker() as m, pytest.raises(TaskDeferred) as info:
        m.post(QUEUE_URL, json={"call_id": 5})
        m.get(f"{FUSE_URL}/outbound/5", json=status_body("queued"))
        operator(deferrable=True, timeout=600, poll_interval=15).execute(context())
    after = time.time()
    trigger = info.value.trigger
    assert isinstance(trigger, FuseCallTrigger)
    assert (trigger.call_id, trigger.poll_interval, trigger.fuse_conn_id) == ("5", 15.0, "fuse_default")
    assert before + 600 <= trigger.deadline <= after + 600, "the deadline is the task's timeout from now"
    assert info.value.method_name == "execute_complete"
    assert info.value.timeout is None


def test_deferrable_returns_at_once_when_the_call_already_ended() -> None:
    with rm.Mocker() as m:
        m.post(QUEUE_URL, json={"call_id": 5})
        m.get(f"{FUSE_URL}/outbound/5", json=status_body("completed"))
        assert operator(deferrable=True).execute(context())["status"] == "completed"


def test_execute_complete_decides_every_event() -> None:
    op = operator()
    done = {"call_id": "5", "status": "completed", "events": []}
    assert op.execute_complete({}, {"status": "completed", "call_id": "5", "call_details": done})[
        "status"
    ] == ("completed")
    with pytest.raises(FuseCallFailed, match="rejected"):
        op.execute_complete(
            {}, {"status": "rejected", "call_id": "5", "call_details": {**done, "status": "rejected"}}
        )
    with pytest.raises(FuseWaitTimeout, match="NOT cancelled"):
        op.execute_complete(
            {}, {"status": "timeout", "call_id": "5", "call_details": None, "message": "x NOT cancelled"}
        )
    with pytest.raises(FuseError, match="HTTP 401"):
        op.execute_complete(
            {}, {"status": "error", "call_id": "5", "call_details": None, "message": "HTTP 401"}
        )


# --- retry safety ------------------------------------------------------------------------------


def test_retry_with_a_call_in_flight_reattaches_without_queueing() -> None:
    store = FakeStore({CALL_ID_KEY: "5"})
    with rm.Mocker() as m:
        m.get(
            f"{FUSE_URL}/outbound/5", [{"json": status_body("dialing")}, {"json": status_body("completed")}]
        )
        assert operator().execute(context(store))["call_id"] == "5"
        assert not any(r.method == "POST" for r in m.request_history)


def test_retry_after_a_failed_call_fails_again_without_redialing() -> None:
    store = FakeStore({CALL_ID_KEY: "5"})
    with rm.Mocker() as m, pytest.raises(FuseCallFailed):
        m.get(f"{FUSE_URL}/outbound/5", json=status_body("failed"))
        operator().execute(context(store))
    assert not any(r.method == "POST" for r in m.request_history)


def test_retry_after_a_failed_call_redials_when_asked() -> None:
    store = FakeStore({CALL_ID_KEY: "5"})
    with rm.Mocker() as m:
        m.get(f"{FUSE_URL}/outbound/5", json=status_body("failed"))
        m.post(QUEUE_URL, json={"call_id": 6})
        m.get(f"{FUSE_URL}/outbound/6", json=status_body("completed"))
        assert operator(redial_on_retry=True).execute(context(store))["call_id"] == "6"
    assert store.data == {CALL_ID_KEY: "6"}


def test_unanswered_earlier_queue_request_blocks_a_second_one() -> None:
    store = FakeStore({QUEUE_SENT_KEY: "2026-11-27T10:00:00+00:00"})
    with rm.Mocker() as m, pytest.raises(FuseError, match="may be queued") as info:
        operator().execute(context(store))
    assert m.call_count == 0
    assert "+16***234" in str(info.value) and "redial_on_retry" in str(info.value)


def test_a_read_timeout_on_queue_keeps_the_marker_so_the_retry_does_not_redial() -> None:
    store = FakeStore()
    with rm.Mocker() as m:
        m.post(QUEUE_URL, exc=requests.ReadTimeout)
        with pytest.raises(FuseError, match="may have been queued"):
            operator().execute(context(store))
        assert QUEUE_SENT_KEY in store.data
        with pytest.raises(FuseError, match="earlier try"):
            operator().execute(context(store))
        assert m.call_count == 1


def test_a_refused_queue_request_clears_the_marker_so_the_retry_may_queue() -> None:
    store = FakeStore()
    with rm.Mocker() as m:
        m.post(
            QUEUE_URL, [{"status_code": 400, "json": {"error": "bad deployment"}}, {"json": {"call_id": 8}}]
        )
        m.get(f"{FUSE_URL}/outbound/8", json=status_body("completed"))
        with pytest.raises(FuseRequestError, match="bad deployment"):
            operator().execute(context(store))
        assert store.data == {}
        assert operator().execute(context(store))["call_id"] == "8"


def test_without_a_task_state_store_it_warns_what_is_not_protected(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with rm.Mocker() as m:
        m.post(QUEUE_URL, json={"call_id": 5})
        operator(wait_for_completion=False).execute(context())
    assert "no task state store" in logged(capsys, caplog)


# --- cancel ---------------------------------------------------------------------------


def test_cancel_pending_calls_operator_says_it_is_deployment_wide(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with rm.Mocker() as m:
        m.delete(f"{FUSE_URL}/apps/11/22/cancel", status_code=202)
        CancelPendingCallsOperator(task_id="cancel", application_id=11, deployment_id=22).execute(context())
        assert m.call_count == 1
    assert "EVERY pending call" in logged(capsys, caplog)
    assert "EVERY pending call" in (CancelPendingCallsOperator.__doc__ or "")


# --- templated connection, masked PCI variables ---------------------------------------------------


@pytest.mark.parametrize(
    "task",
    [
        lambda: operator(fuse_conn_id="{{ params.conn }}"),
        lambda: CancelPendingCallsOperator(
            task_id="cancel", application_id=11, deployment_id=22, fuse_conn_id="{{ params.conn }}"
        ),
    ],
    ids=["QueueCallOperator", "CancelPendingCallsOperator"],
)
def test_fuse_conn_id_is_templated(task: Any) -> None:
    op = task()
    op.render_template_fields({"params": {"conn": "fuse_eu"}})
    assert op.fuse_conn_id == "fuse_eu"


PCI_VALUES = {"card_hint": "4111-1111-PCI-77", "amount_due": "USD 1234.56"}


def stored_rendered_fields(op: Any, context: dict[str, Any]) -> dict[str, Any]:
    """What Airflow's task runner stores (and the Rendered Template view shows) once ``op`` rendered."""
    from airflow.sdk.execution_time.task_runner import _serialize_rendered_fields

    op.render_template_fields(context)
    return _serialize_rendered_fields(op)


@pytest.mark.parametrize("variables", [dict(PCI_VALUES), '{"card_hint": "4111-1111-PCI-77"}'])
def test_is_pci_variables_are_masked_in_the_rendered_template_view(variables: Any) -> None:
    op = operator(task_id="pci_masked", is_pci="{{ params.pci }}", variables=variables)
    stored = json.dumps(stored_rendered_fields(op, {"params": {"pci": "true"}}))
    assert "***" in stored
    assert "4111-1111-PCI-77" not in stored and "USD 1234.56" not in stored
    assert op.variables == variables, "the call itself still gets the real values"


def test_variables_of_a_call_that_is_not_pci_are_not_masked() -> None:
    values = {"note": "not-pci-visible-9183"}
    op = operator(task_id="not_pci", variables=values)
    assert "not-pci-visible-9183" in json.dumps(stored_rendered_fields(op, {}))


def test_the_package_reads_configuration_the_task_sdk_way() -> None:
    """``airflow.sdk`` conf through the compat layer (falls back to ``airflow.configuration`` on 3.1)."""
    from pathlib import Path

    import airflow_provider_fuse

    package = Path(airflow_provider_fuse.__file__).parent
    readers = [p.name for p in package.rglob("*.py") if "from airflow.configuration import" in p.read_text()]
    assert readers == []
