"""A bulk upload Fuse answers without ids: queued, recorded, never uploaded again, never polled."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests_mock as rm

from airflow_provider_fuse.campaign import UNTRACKED, CampaignResult
from airflow_provider_fuse.operators.fuse import QUEUED_XCOM_KEY, QueueCallsOperator
from airflow_provider_fuse.resume import CHUNK_KEY, CHUNK_SENT_KEY
from airflow_provider_fuse.testing import FuseSimulator
from tests.conftest import FUSE_URL
from tests.support import FakeStore, context

BULK_URL = f"{FUSE_URL}/apps/11/22/bulk_queue"


def numbers(count: int) -> list[dict[str, Any]]:
    return [{"phone_number": f"+1617555{n:04d}", "variables": {"n": n}} for n in range(100, 100 + count)]


def operator(count: int, **kwargs: Any) -> QueueCallsOperator:
    return QueueCallsOperator(
        task_id="campaign",
        application_id=11,
        deployment_id=22,
        calls=numbers(count),
        poll_interval=0.02,
        max_requests_per_second=1000,
        timeout=30,
        **kwargs,
    )


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[FuseSimulator]:
    """A simulator that answers bulk uploads with ``{"success": true}`` only."""
    from airflow_provider_fuse.hooks.fuse import FuseHook

    monkeypatch.setattr(FuseHook, "backoff", 0)
    with FuseSimulator(bulk_answer="success_only") as simulator:
        for name, value in simulator.connection_env().items():
            monkeypatch.setenv(name, value)
        yield simulator


def test_an_id_less_answer_ends_the_task_successfully_with_untracked_rows(
    sim: FuseSimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    store = FakeStore()
    result = operator(5, chunk_size=2).execute(context(store))
    assert [len(entry.call_ids) for entry in sim.requests("bulk_queue")] == [2, 2, 1]
    assert sim.requests("status") == []  # nobody asks about calls it cannot name
    assert result["untracked"] == 5 and result["totals"] == {UNTRACKED: 5}
    assert [(c[0], c[1], c[3]) for c in result["calls"]] == [(None, row, UNTRACKED) for row in range(1, 6)]
    assert result["calls"][0][2] == "+16***100"  # masked, as queued
    assert result["finished"] is True and result["completed_ratio"] == 1.0
    parsed = CampaignResult.from_xcom(result)
    assert parsed.not_reached == [] and parsed.pending == [] and len(parsed.untracked) == 5
    record = store.data[CHUNK_KEY.format(index=0)]
    assert record["untracked"] is True and record["call_ids"] == []
    assert CHUNK_SENT_KEY.format(index=0) not in store.data
    out = capsys.readouterr().out
    assert "Fuse queued 5 call(s) without answering their ids" in out
    assert "Fuse answered no call ids: not tracked" in out


def test_a_retried_task_never_uploads_an_untracked_chunk_again(sim: FuseSimulator) -> None:
    store = FakeStore()
    operator(4, chunk_size=2).execute(context(store))
    again = operator(4, chunk_size=2).execute(context(store))
    assert len(sim.requests("bulk_queue")) == 2  # the retry uploaded nothing
    assert again["untracked"] == 4 and sim.requests("status") == []


def test_tracked_and_untracked_chunks_in_one_campaign(monkeypatch: pytest.MonkeyPatch) -> None:
    """A first chunk answered with ids is tracked; a second answered ``{"success": true}`` is not."""
    with FuseSimulator() as sim:
        for name, value in sim.connection_env().items():
            monkeypatch.setenv(name, value)
        ctx = context(FakeStore())
        op = operator(3, chunk_size=2, min_completed_ratio=1.0)
        sim.faults.inject("bulk_queue", "no_id", count=1)  # the first upload's answer has no ids
        result = op.execute(ctx)
        assert result["untracked"] == 2 and result["totals"] == {UNTRACKED: 2, "completed": 1}
        assert result["completed_ratio"] == 1.0  # of the tracked calls: the policy holds
        assert [c[3] for c in result["calls"]] == [UNTRACKED, UNTRACKED, "completed"]
        assert {entry.call_ids[0] for entry in sim.requests("status")} == {"3"}
        assert ctx["ti"].xcom[QUEUED_XCOM_KEY]["untracked_chunks"] == [0]
        assert ctx["ti"].xcom["campaign_chunk_0_rows"] == {
            "rows": [[1, 2]],
            "phones": ["+16***100", "+16***101"],
        }
        assert "2 more queued without tracking" in CampaignResult.from_xcom(result).describe()


@pytest.mark.usefixtures("fuse_conn")
def test_without_waiting_an_empty_202_is_untracked_too() -> None:
    with rm.Mocker() as m:
        m.post(BULK_URL, status_code=202, text="")
        result = operator(3, wait_for_completion=False).execute(context(FakeStore()))
    assert result["untracked"] == 3 and m.call_count == 1
