"""Issue 12, item 7: state-store retention, and an automatic retry told apart from a person's clear.

* Keys used to be written with the default retention (30 days): once ``airflow state-store clean``
  removed them, a later automatic retry dialed again. They now live as long as the task's retries
  (and its calls) may need them.
* ``clear_task_instances`` keeps the keys, so a task a person cleared returned the old call's
  outcome without dialing. Airflow 3.3 raises ``max_tries`` on a clear and keeps it on a retry: a
  cleared task calls again, unless its earlier call is still in progress (then it re-attaches).

``StateStore`` and ``TaskInstance`` (see ``state``) do what Airflow does to keys, expiries, try
numbers and ``max_tries``; Fuse is requests-mock.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
import requests_mock as rm

from airflow_provider_fuse.exceptions import FuseError, FuseWaitTimeout
from airflow_provider_fuse.operators.fuse import QueueCallOperator, QueueCallsOperator
from airflow_provider_fuse.resume import CALL_ID_KEY, CHUNK_KEY, QUEUE_SENT_KEY
from tests.attack.state import DEFAULT_RETENTION, StateStore, TaskInstance, context
from tests.conftest import FUSE_URL
from tests.support import logged, status_body

QUEUE_URL = f"{FUSE_URL}/apps/11/22/queue"
BULK_URL = f"{FUSE_URL}/apps/11/22/bulk_queue"

pytestmark = pytest.mark.usefixtures("fuse_conn", "no_polling_limits")


def call(retries: int = 2, **kwargs: Any) -> QueueCallOperator:
    kwargs.setdefault("poll_interval", 0.01)
    return QueueCallOperator(
        task_id="call",
        application_id=11,
        deployment_id=22,
        phone_number="+16175551234",
        retries=retries,
        **kwargs,
    )


def statuses(m: rm.Mocker, call_id: int, *names: str) -> None:
    m.get(f"{FUSE_URL}/outbound/{call_id}", [{"json": status_body(name)} for name in names])


def posts(m: rm.Mocker) -> int:
    return sum(r.method == "POST" for r in m.request_history)


# --- retention ---------------------------------------------------------------------------------


def test_keys_outlive_every_automatic_retry_even_after_state_store_clean() -> None:
    """Five retries a week apart: the fifth comes 35 days later, past the default 30-day retention."""
    store, ti = StateStore(), TaskInstance(retries=5)
    op = call(retries=5, retry_delay=timedelta(days=7), timeout=0.05)
    with rm.Mocker() as m:
        m.post(QUEUE_URL, json={"call_id": 5})
        statuses(m, 5, "dialing")
        with pytest.raises(FuseWaitTimeout):
            op.execute(context(store, ti))
        statuses(m, 5, "completed")
        store.now += timedelta(days=35, hours=1)
        store.clean()
        assert op.execute(context(store, ti.retry().retry().retry().retry().retry()))["call_id"] == "5"
        assert posts(m) == 1, "a retry dialed again once its keys were cleaned away"
    kept = store.retentions[CALL_ID_KEY]
    assert kept is not None and kept > timedelta(days=35)


def test_keys_get_an_explicit_retention_never_shorter_than_the_default() -> None:
    store, ti = StateStore(), TaskInstance(retries=1)
    with rm.Mocker() as m:
        m.post(QUEUE_URL, json={"call_id": 5})
        call(retries=1, wait_for_completion=False).execute(context(store, ti))
    assert set(store.retentions) == {QUEUE_SENT_KEY, CALL_ID_KEY}
    assert all(kept is not None and kept >= DEFAULT_RETENTION for kept in store.retentions.values())


def test_keys_live_while_a_call_far_ahead_may_still_ring() -> None:
    """A call that may start in 60 days: a clear while it waits must still find it and re-attach."""
    store, ti = StateStore(), TaskInstance(retries=0)
    start = int(time.time()) + 60 * 86400
    with rm.Mocker() as m:
        m.post(QUEUE_URL, json={"call_id": 5})
        call(retries=0, wait_for_completion=False, start_timestamp=start).execute(context(store, ti))
    assert store.retentions[CALL_ID_KEY] > timedelta(days=60)


# --- retry or clear -------------------------------------------------------------------------------


def test_an_automatic_retry_resumes_the_call_without_dialing() -> None:
    store, ti = StateStore(), TaskInstance()
    with rm.Mocker() as m:
        m.post(QUEUE_URL, json={"call_id": 5})
        statuses(m, 5, "dialing")
        with pytest.raises(FuseWaitTimeout):
            call(timeout=0.05).execute(context(store, ti))
        statuses(m, 5, "completed")
        assert call().execute(context(store, ti.retry()))["status"] == "completed"
        assert posts(m) == 1


def test_a_cleared_task_whose_call_ended_calls_again(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    store, ti = StateStore(), TaskInstance()
    with rm.Mocker() as m:
        m.post(QUEUE_URL, [{"json": {"call_id": 5}}, {"json": {"call_id": 6}}])
        statuses(m, 5, "completed")
        statuses(m, 6, "completed")
        assert call().execute(context(store, ti))["call_id"] == "5"
        assert call().execute(context(store, ti.clear()))["call_id"] == "6"
        assert posts(m) == 2
    assert store.data[CALL_ID_KEY]["call_id"] == "6"
    text = logged(capsys, caplog)
    assert "cleared since Fuse call 5" in text and "calls again" in text


def test_a_task_cleared_while_its_call_is_in_progress_reattaches(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    store, ti = StateStore(), TaskInstance()
    with rm.Mocker() as m:
        m.post(QUEUE_URL, json={"call_id": 5})
        statuses(m, 5, "dialing")
        with pytest.raises(FuseWaitTimeout):
            call(timeout=0.05).execute(context(store, ti))
        statuses(m, 5, "dialing", "completed")
        assert call().execute(context(store, ti.clear()))["call_id"] == "5"
        assert posts(m) == 1
    assert "cleared while Fuse call 5" in logged(capsys, caplog)
    assert store.data[CALL_ID_KEY]["max_tries"] == ti.max_tries, "this run's retries must resume it"


def test_after_a_clear_that_called_again_a_retry_resumes_the_new_call() -> None:
    store, ti = StateStore(), TaskInstance()
    with rm.Mocker() as m:
        m.post(QUEUE_URL, [{"json": {"call_id": 5}}, {"json": {"call_id": 6}}])
        statuses(m, 5, "completed")
        statuses(m, 6, "dialing")
        call().execute(context(store, ti))
        with pytest.raises(FuseWaitTimeout):
            call(timeout=0.05).execute(context(store, ti.clear()))
        statuses(m, 6, "completed")
        assert call().execute(context(store, ti.retry()))["call_id"] == "6"
        assert posts(m) == 2


def test_records_of_the_previous_release_still_resume() -> None:
    """A bare call id has no max_tries: whatever the task instance says now, it is resumed."""
    ti = TaskInstance().clear()
    with rm.Mocker() as m:
        statuses(m, 5, "completed")
        assert call().execute(context(StateStore({CALL_ID_KEY: "5"}), ti))["call_id"] == "5"
        assert posts(m) == 0


def test_a_cleared_task_whose_earlier_request_went_unanswered_still_refuses() -> None:
    """No call id to look at: nobody can tell whether that call rings, so nothing is sent."""
    store, ti = StateStore(), TaskInstance()
    with rm.Mocker() as m:
        m.post(QUEUE_URL, status_code=502, json={})
        with pytest.raises(FuseError, match="may have been queued"):
            call().execute(context(store, ti))
        with pytest.raises(FuseError, match=r"This task was cleared.*redial_on_retry"):
            call().execute(context(store, ti.clear()))
        assert posts(m) == 1


# --- campaigns ---------------------------------------------------------------------------------


def campaign(retries: int = 2, **kwargs: Any) -> QueueCallsOperator:
    rows = [{"phone_number": f"+1617555{n:04d}"} for n in range(101, 105)]
    return QueueCallsOperator(
        task_id="campaign",
        application_id=11,
        deployment_id=22,
        calls=rows,
        chunk_size=2,
        wait_for_completion=False,
        retries=retries,
        max_requests_per_second=1000,
        **kwargs,
    )


UPLOADS = [{"json": {"call_ids": [1, 2]}}, {"json": {"call_ids": [3, 4]}}]


def test_a_retried_campaign_resumes_its_chunks() -> None:
    store, ti = StateStore(), TaskInstance()
    with rm.Mocker() as m:
        m.post(BULK_URL, UPLOADS)
        campaign().execute(context(store, ti))
        campaign().execute(context(store, ti.retry()))
        assert posts(m) == 2


def test_a_campaign_cleared_after_every_call_ended_calls_again() -> None:
    store, ti = StateStore(), TaskInstance()
    with rm.Mocker() as m:
        m.post(BULK_URL, [*UPLOADS, {"json": {"call_ids": [5, 6]}}, {"json": {"call_ids": [7, 8]}}])
        for call_id in (1, 2, 3, 4):
            statuses(m, call_id, "completed")
        campaign().execute(context(store, ti))
        campaign().execute(context(store, ti.clear()))
        assert posts(m) == 4
    assert [store.data[CHUNK_KEY.format(index=i)]["call_ids"] for i in (0, 1)] == [["5", "6"], ["7", "8"]]


def test_a_campaign_cleared_while_a_call_is_in_progress_reattaches() -> None:
    store, ti = StateStore(), TaskInstance()
    with rm.Mocker() as m:
        m.post(BULK_URL, UPLOADS)
        statuses(m, 4, "completed")
        statuses(m, 3, "dialing")
        campaign().execute(context(store, ti))
        campaign().execute(context(store, ti.clear()))
        assert posts(m) == 2
        assert [r.path for r in m.request_history if r.method == "GET"] == [
            "/api/outbound/4",
            "/api/outbound/3",
        ]
    assert store.data[CHUNK_KEY.format(index=0)]["max_tries"] == ti.max_tries
