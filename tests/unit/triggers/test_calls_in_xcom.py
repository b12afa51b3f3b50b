"""FuseCallsTrigger reads a campaign's call ids from its task instance's XComs: small arguments at any size."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
import requests_mock as rm
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_fuse.campaign import CallsInXCom, ids_digest, pack_ids
from airflow_provider_fuse.operators.fuse import CHUNK_XCOM_KEY, QueueCallsOperator
from airflow_provider_fuse.triggers.fuse import FuseCallsTrigger
from tests.conftest import FUSE_URL, HANG, within
from tests.support import FakeStore, FakeTI, context, serve_xcom

BULK_URL = f"{FUSE_URL}/apps/11/22/bulk_queue"
#: What the issue asks of a deferral's arguments at 100,000 calls: "a few KB" (MySQL's column: 64 KB).
SMALL = 2_000


def scattered(count: int, first: int = 0) -> list[str]:
    """Ids that never follow each other, so packing them into runs saves nothing."""
    return [str(90_000_000 + 7 * n) for n in range(first, first + count)]


def where(ti: FakeTI, chunks: list[list[str]], starts: list[list[Any]] | None = None) -> CallsInXCom:
    ids = [call_id for chunk in chunks for call_id in chunk]
    return {
        "dag_id": ti.dag_id,
        "task_id": ti.task_id,
        "run_id": ti.run_id,
        "map_index": ti.map_index,
        "key": CHUNK_XCOM_KEY,
        "chunks": len(chunks),
        "calls": len(ids),
        "digest": ids_digest(ids),
        "starts": starts or [],
    }


def pushed(ti: FakeTI, chunks: list[list[str]]) -> FakeTI:
    for index, ids in enumerate(chunks):
        ti.xcom_push(CHUNK_XCOM_KEY.format(index=index), pack_ids(ids))
    return ti


def run(trigger: FuseCallsTrigger) -> dict[str, Any]:
    async def first_event() -> dict[str, Any]:
        (event,) = [event.payload async for event in trigger.run()]
        return event

    return asyncio.run(within(HANG, first_event(), "FuseCallsTrigger"))


@pytest.mark.usefixtures("fuse_conn")
def test_100000_scattered_ids_defer_in_a_few_hundred_bytes_and_are_read_back_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chunks = [scattered(5000, first=5000 * i) for i in range(20)]
    ti = pushed(FakeTI(), chunks)
    trigger = FuseCallsTrigger(
        deadline=time.time() - 1, call_ids_in_xcom=where(ti, chunks, [[2e9, [[3, 2]]]])
    )
    kwargs = trigger.serialize()[1]
    size = len(json.dumps(kwargs))
    assert size < SMALL, size
    assert len(json.dumps(pack_ids(chunks[0] + chunks[1]))) > 64_000  # what packing alone gave
    read = serve_xcom(monkeypatch, ti)
    rebuilt = FuseCallsTrigger(**kwargs)  # as the triggerer rebuilds it
    event = run(rebuilt)  # the deadline has passed: no status request, every call listed
    assert read == [CHUNK_XCOM_KEY.format(index=i) for i in range(20)]  # once each, when it starts
    assert [call[0] for call in event["calls"]] == [call_id for chunk in chunks for call_id in chunk]
    assert event["status"] == "timeout" and rebuilt.not_before == [(2e9, chunks[3] + chunks[4])]


@pytest.mark.usefixtures("fuse_conn", "no_polling_limits")
def test_a_campaign_of_scattered_ids_hands_the_trigger_where_they_are_not_the_ids(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [{"phone_number": f"+1617555{n:04d}"} for n in range(10_000)]
    ids = scattered(10_000)
    answers = [{"json": {"call_ids": ids[:5000]}}, {"json": {"call_ids": ids[5000:]}}]
    ctx = context(FakeStore())
    with rm.Mocker() as m, pytest.raises(TaskDeferred) as info:
        m.post(BULK_URL, answers)
        QueueCallsOperator(
            task_id="campaign",
            application_id=11,
            deployment_id=22,
            calls=rows,
            chunk_size=5000,
            deferrable=True,
        ).execute(ctx)
    kwargs = info.value.trigger.serialize()[1]
    assert len(json.dumps(kwargs)) < SMALL and "call_ids" not in kwargs
    assert kwargs["call_ids_in_xcom"]["chunks"] == 2 and kwargs["call_ids_in_xcom"]["calls"] == 10_000
    serve_xcom(monkeypatch, ctx["ti"])
    rebuilt = FuseCallsTrigger(**{**kwargs, "deadline": time.time() - 1})
    assert [call[0] for call in run(rebuilt)["calls"]] == ids


@pytest.mark.usefixtures("fuse_conn", "no_polling_limits")
def test_a_retry_pushes_the_ids_again_before_deferring_since_a_new_try_starts_without_xcom(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [{"phone_number": f"+1617555{n:04d}"} for n in range(4)]
    store = FakeStore()
    op = QueueCallsOperator(
        task_id="campaign", application_id=11, deployment_id=22, calls=rows, chunk_size=2, deferrable=True
    )
    with rm.Mocker() as m:
        m.post(BULK_URL, [{"json": {"call_ids": ["11", "13"]}}, {"json": {"call_ids": ["15", "17"]}}])
        with pytest.raises(TaskDeferred):
            op.execute(context(store))
        retry = context(store)  # the same task state store, a fresh XCom
        with pytest.raises(TaskDeferred) as info:
            op.execute(retry)
        assert m.call_count == 2, "the retry uploaded nothing again"
    serve_xcom(monkeypatch, retry["ti"])
    rebuilt = FuseCallsTrigger(**{**info.value.trigger.serialize()[1], "deadline": time.time() - 1})
    assert [call[0] for call in run(rebuilt)["calls"]] == ["11", "13", "15", "17"]


@pytest.mark.usefixtures("fuse_conn")
@pytest.mark.parametrize(
    ("tamper", "complaint"),
    [
        (lambda ti: ti.xcom.pop("campaign_chunk_1"), "XCom 'campaign_chunk_1' is missing"),
        (lambda ti: ti.xcom.update(campaign_chunk_1=["99"]), "hold other calls than it deferred with"),
    ],
)
def test_ids_gone_or_changed_in_xcom_end_the_wait_with_an_error_naming_the_task(
    monkeypatch: pytest.MonkeyPatch, tamper: Any, complaint: str
) -> None:
    chunks = [["1", "2"], ["3"]]
    ti = pushed(FakeTI(), chunks)
    trigger = FuseCallsTrigger(call_ids_in_xcom=where(ti, chunks))
    tamper(ti)
    serve_xcom(monkeypatch, ti)
    event = run(trigger)
    assert event["status"] == "error" and complaint in event["message"]
    assert "'campaign'" in event["message"] and "Nothing was cancelled" in event["message"]


@pytest.mark.usefixtures("fuse_conn")
def test_outside_a_triggerer_or_dags_test_the_wait_ends_with_an_error_saying_why() -> None:
    chunks = [["1"]]
    event = run(FuseCallsTrigger(call_ids_in_xcom=where(pushed(FakeTI(), chunks), chunks)))
    assert event["status"] == "error" and "no Airflow Task SDK supervisor runs here" in event["message"]


def test_the_ids_are_read_through_the_task_sdk_supervisor_with_the_task_instance_s_coordinates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a triggerer (or `airflow dags test`) answers: XCom.get_one's request, from a thread."""
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.comms import GetXCom, XComResult

    from airflow_provider_fuse.triggers.fuse import read_xcom

    asked: list[GetXCom] = []

    class Supervisor:
        def send(self, msg: GetXCom) -> XComResult:
            asked.append(msg)
            return XComResult(key=msg.key, value=[[5, 2]])

    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", Supervisor(), raising=False)
    ti = FakeTI()
    value = asyncio.run(read_xcom(where(ti, [["5", "6"]]), "campaign_chunk_0"))
    assert value == [[5, 2]]
    ((msg),) = asked
    assert (msg.key, msg.dag_id, msg.task_id, msg.run_id, msg.map_index) == (
        "campaign_chunk_0",
        ti.dag_id,
        ti.task_id,
        ti.run_id,
        -1,
    )
