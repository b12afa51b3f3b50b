"""Issue 12, item 4: a call Fuse queued is never lost because its id could not be stored.

Once Fuse answers a call id (or a chunk's ids), they are logged and pushed to XCom before anything
else that can fail, then stored in the task state store. When storing fails (an execution-API blip,
simulated by a store whose ``set()`` raises), the task's error names the ids and says they were
queued, and the retry does not claim that Fuse never answered.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests_mock as rm

from airflow_provider_fuse.exceptions import FuseError
from airflow_provider_fuse.operators.fuse import QueueCallOperator, QueueCallsOperator
from airflow_provider_fuse.resume import CALL_ID_KEY, CHUNK_KEY, CHUNK_SENT_KEY, QUEUE_SENT_KEY
from tests.attack.state import StateStore, TaskInstance, context
from tests.conftest import FUSE_URL
from tests.support import logged, status_body

QUEUE_URL = f"{FUSE_URL}/apps/11/22/queue"
BULK_URL = f"{FUSE_URL}/apps/11/22/bulk_queue"

pytestmark = pytest.mark.usefixtures("fuse_conn")


def call(**kwargs: Any) -> QueueCallOperator:
    kwargs.setdefault("wait_for_completion", False)
    return QueueCallOperator(
        task_id="call", application_id=11, deployment_id=22, phone_number="+16175551234", **kwargs
    )


def campaign(**kwargs: Any) -> QueueCallsOperator:
    rows = [{"phone_number": f"+1617555{n:04d}"} for n in range(101, 106)]
    return QueueCallsOperator(
        task_id="campaign",
        application_id=11,
        deployment_id=22,
        calls=rows,
        chunk_size=2,
        wait_for_completion=False,
        **kwargs,
    )


class OrderedTI(TaskInstance):
    """Records XCom pushes in the store's write log, to see which came first."""

    def __init__(self, store: StateStore):
        super().__init__()
        self.store = store

    def xcom_push(self, key: str, value: Any) -> None:
        self.store.writes.append(f"xcom:{key}")
        super().xcom_push(key, value)


def test_a_call_id_that_cannot_be_stored_is_logged_pushed_and_named_in_the_error(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    store = StateStore(failing=(CALL_ID_KEY,))
    ti = TaskInstance()
    with rm.Mocker() as m, pytest.raises(FuseError) as info:
        m.post(QUEUE_URL, json={"call_id": 4711})
        call().execute(context(store, ti))
    message = str(info.value)
    assert "4711" in message and "queued" in message and "do not queue" in message
    assert ti.xcom["call_id"] == "4711"  # the extra link and a person find it
    assert "Queued Fuse call 4711" in logged(capsys, caplog)
    assert m.call_count == 1


def test_the_call_id_is_pushed_to_xcom_before_it_is_stored() -> None:
    store = StateStore()
    ti = OrderedTI(store)
    with rm.Mocker() as m:
        m.post(QUEUE_URL, json={"call_id": 4711})
        call().execute(context(store, ti))
    assert store.writes == [QUEUE_SENT_KEY, "xcom:call_id", CALL_ID_KEY]


def test_the_retry_after_a_lost_store_write_does_not_claim_fuse_never_answered() -> None:
    store = StateStore(failing=(CALL_ID_KEY,))
    ti = TaskInstance()
    with rm.Mocker() as m:
        m.post(QUEUE_URL, json={"call_id": 4711})
        with pytest.raises(FuseError, match="4711"):
            call().execute(context(store, ti))
        store.failing.clear()
        with pytest.raises(FuseError) as info:
            call().execute(context(store, ti.retry()))
        assert m.call_count == 1, "the retry queued a second call"
    message = str(info.value)
    assert "before Fuse answered" not in message and "never answered" not in message
    assert "no call id was recorded" in message and "could not be stored" in message


def test_an_xcom_blip_after_the_id_is_stored_names_the_call_and_the_retry_resumes() -> None:
    class FlakyTI(TaskInstance):
        def xcom_push(self, key: str, value: Any) -> None:
            if self.try_number == 1:
                raise RuntimeError("POST xcoms/call_id: 502 Bad Gateway")
            super().xcom_push(key, value)

    store, ti = StateStore(), FlakyTI()
    with rm.Mocker() as m:
        m.post(QUEUE_URL, json={"call_id": 4711})
        m.get(f"{FUSE_URL}/outbound/4711", json=status_body("completed"))
        with pytest.raises(FuseError, match=r"4711.*kept in the task state store.*502 Bad Gateway"):
            call().execute(context(store, ti))
        assert call().execute(context(store, ti.retry())) == {"call_id": "4711"}
        assert [r.method for r in m.request_history] == ["POST", "GET"]
    assert ti.xcom["call_id"] == "4711"


def test_a_chunk_whose_ids_cannot_be_stored_is_logged_pushed_and_named_in_the_error(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    store = StateStore(failing=(CHUNK_KEY.format(index=1),))
    ti = TaskInstance()
    with rm.Mocker() as m, pytest.raises(FuseError) as info:
        m.post(BULK_URL, [{"json": {"call_ids": [501, 502]}}, {"json": {"call_ids": [503, 504]}}])
        campaign().execute(context(store, ti))
    message = str(info.value)
    assert "chunk 2" in message and "503" in message and "504" in message and "queued" in message
    ids = {key: value for key, value in ti.xcom.items() if not key.endswith("_rows")}
    assert ids == {"campaign_chunk_0": [[501, 2]], "campaign_chunk_1": [[503, 2]]}
    assert "ids 503 to 504" in logged(capsys, caplog)
    assert m.call_count == 2, "the upload stopped at the chunk whose ids were not kept"


def test_the_campaign_retry_after_a_lost_chunk_record_refuses_without_claiming_no_answer() -> None:
    store = StateStore(failing=(CHUNK_KEY.format(index=1),))
    ti = TaskInstance()
    with rm.Mocker() as m:
        m.post(BULK_URL, [{"json": {"call_ids": [501, 502]}}, {"json": {"call_ids": [503, 504]}}])
        with pytest.raises(FuseError, match="503"):
            campaign().execute(context(store, ti))
        store.failing.clear()
        with pytest.raises(FuseError) as info:
            campaign().execute(context(store, ti.retry()))
        assert m.call_count == 2, "the retry uploaded again"
    assert CHUNK_SENT_KEY.format(index=1) in store.data
    message = str(info.value)
    assert "chunk 2 of 3" in message and "before Fuse answered" not in message
    assert "no call id was recorded" in message
