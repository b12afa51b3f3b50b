"""waiting.py: one set of wait rules for the worker and the triggerer, and a sync wait without aiohttp."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from typing import Any, get_type_hints

import pytest

from airflow_provider_fuse import waiting
from airflow_provider_fuse.campaign import pack_ids
from airflow_provider_fuse.exceptions import (
    FuseCallFailed,
    FuseError,
    FuseNotFoundError,
    FuseServerError,
    FuseWaitTimeout,
)
from airflow_provider_fuse.models import CallDetails, CallDetailsDict

LOG = logging.getLogger("tests.waiting")
SYNC_WAIT = textwrap.dedent(
    """
    import json, os, sys
    from airflow_provider_fuse.testing.simulator import FuseSimulator

    with FuseSimulator(speed=600) as sim:
        os.environ.update(sim.connection_env())
        from airflow_provider_fuse.operators.fuse import QueueCallOperator
        from airflow_provider_fuse.sensors.fuse import FuseCallSensor

        class TI:
            def xcom_push(self, key, value):
                pass

        op = QueueCallOperator(
            task_id="call", application_id=1, deployment_id=2, phone_number="+16175550123",
            deferrable=False, poll_interval=0.05, timeout=120,
        )
        result = op.execute({"ti": TI()})
        sensor = FuseCallSensor(task_id="wait", call_id=result["call_id"], deferrable=False)
        poked = sensor.poke({})
    heavy = ("aiohttp", "airflow_provider_fuse.triggers.fuse")
    print(json.dumps({"status": result["status"], "poked": bool(poked), "loaded": [m for m in heavy if m in sys.modules]}))
    """
)


def test_a_synchronous_wait_imports_neither_aiohttp_nor_the_triggers() -> None:
    """Operators and the sensor wait in the worker with waiting.py: no trigger module, no aiohttp."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", SYNC_WAIT], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"status": "completed", "poked": True, "loaded": []}


def details(status: str, call_id: str = "5") -> CallDetails:
    return CallDetails(call_id=call_id, status=status, phone_number="16175550123", attempts=1)


def test_outcome_returns_completed_details_and_raises_for_other_endings() -> None:
    assert waiting.outcome(details("completed"))["status"] == "completed"
    with pytest.raises(FuseCallFailed, match="ended 'rejected'"):
        waiting.outcome(details("rejected"))


@pytest.mark.parametrize(
    ("event", "error"),
    [
        (
            {"status": waiting.TIMEOUT, "call_id": "5", "call_details": None, "message": "late"},
            FuseWaitTimeout,
        ),
        ({"status": waiting.ERROR, "call_id": "5", "call_details": None, "message": "gone"}, FuseError),
        ({"status": "failed", "call_id": "5", "call_details": None, "message": ""}, FuseError),
    ],
)
def test_an_event_without_a_completed_call_fails_the_task(
    event: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        waiting.outcome_from_event(event)


def test_an_event_and_a_status_are_decided_alike() -> None:
    event = waiting.call_event("completed", "5", details("completed"), "done")
    assert waiting.outcome_from_event(event) == waiting.outcome(details("completed"))
    failed = waiting.call_event("failed", "5", details("failed"), "done")
    with pytest.raises(FuseCallFailed):
        waiting.outcome_from_event(failed)


class OneAnswerHook:
    """A hook whose status request answers once, with details or an error."""

    def __init__(self, answer: CallDetails | Exception):
        self.answer = answer
        self.deadlines: list[float | None] = []

    def get_call(self, call_id: str, *, deadline: float | None = None) -> CallDetails:
        self.deadlines.append(deadline)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_one_look_before_deferring_returns_an_ended_call_and_rides_out_a_transient_error() -> None:
    assert waiting.ended_before_deferring(OneAnswerHook(details("completed")), "5", LOG, 99.0) is not None  # type: ignore[arg-type]
    assert waiting.ended_before_deferring(OneAnswerHook(details("dialing")), "5", LOG) is None  # type: ignore[arg-type]
    hook = OneAnswerHook(FuseServerError("busy", status_code=503))
    assert waiting.ended_before_deferring(hook, "5", LOG, 99.0) is None  # type: ignore[arg-type]
    assert hook.deadlines == [99.0]
    with pytest.raises(FuseNotFoundError):  # a permanent error is not waited out
        waiting.ended_before_deferring(OneAnswerHook(FuseNotFoundError("gone")), "5", LOG)  # type: ignore[arg-type]


QUEUED = {
    "rows": 3,
    "call_ids": pack_ids(["10", "11"]),
    "call_rows": pack_ids([1, 3]),
    "skipped": [[2, "phone_number", "bad"]],
    "skipped_count": 1,
}


def calls_event(status: str, *statuses: str) -> dict[str, Any]:
    calls = [[str(10 + i), s, 1, "16***123"] for i, s in enumerate(statuses)]
    return {"status": status, "message": f"wait {status}", "calls": calls, "requests": 4}


def test_a_campaign_that_ended_passes_unless_below_its_ratio() -> None:
    result, error = waiting.campaign_outcome(calls_event(waiting.DONE, "completed", "failed"), QUEUED, 0.5)
    assert error is None and [c.row for c in result.reached] == [1] and result.skipped_count == 1
    result, error = waiting.campaign_outcome(calls_event(waiting.DONE, "completed", "failed"), QUEUED, 0.6)
    assert isinstance(error, FuseCallFailed) and "min_completed_ratio=0.6 (2 needed)" in str(error)


def test_a_campaign_wait_that_stopped_fails_with_what_is_known() -> None:
    _, error = waiting.campaign_outcome(calls_event(waiting.TIMEOUT, "completed", "queued"), QUEUED, 0.0)
    assert isinstance(error, FuseWaitTimeout) and "1 of 2 calls completed" in str(error)
    _, error = waiting.campaign_outcome(calls_event(waiting.ERROR, "completed", None), QUEUED, 0.0)  # type: ignore[arg-type]
    assert type(error) is FuseError and "wait error" in str(error)


@pytest.mark.parametrize(
    ("record", "produced"),
    [
        (waiting.CallTriggerEvent, lambda: waiting.call_event("completed", "5", details("completed"), "m")),
        (
            waiting.CallsTriggerEvent,
            lambda: waiting.CallsPoller(["5"], poll_interval=1, now=0, log=LOG).event(),
        ),
        (CallDetailsDict, lambda: details("completed").to_dict()),
    ],
)
def test_events_have_exactly_the_keys_their_types_declare(record: type, produced: Any) -> None:
    assert set(produced()) == set(get_type_hints(record))


def test_a_call_ended_by_its_callback_is_never_polled_again() -> None:
    import logging

    from airflow_provider_fuse.models import CallDetails
    from airflow_provider_fuse.waiting import CallsPoller

    poller = CallsPoller(["1", "2", "3"], poll_interval=10, now=0.0, log=logging.getLogger("test"))
    assert poller.next_call(10.0) == "1"  # "2" and "3" are due too, waiting their turn
    done = CallDetails.from_dict({"call_id": "2", "status": "completed", "events": []})
    assert poller.reported("2", done) and not poller.reported("2", done)
    poller.reported("3", CallDetails.from_dict({"status": "dialing", "events": []}))  # not an outcome
    assert poller.next_call(10.0) == "3" and poller.next_call(10.0) is None
    poller.record("1", done, 11.0)
    assert (poller.pending, poller.requests, poller.callbacks) == (1, 1, 1)
    assert poller.event()["calls"][1][:2] == ["2", "completed"]
