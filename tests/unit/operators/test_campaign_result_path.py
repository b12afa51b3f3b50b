"""QueueCallsOperator(result_path=...): every call's outcome as CSV, locally or in object storage."""

from __future__ import annotations

import asyncio
import csv
import io
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import ObjectStoragePath, TaskDeferred
from fsspec.implementations.memory import MemoryFileSystem

from airflow_provider_fuse import result_file
from airflow_provider_fuse.campaign import CampaignCall
from airflow_provider_fuse.exceptions import FuseError, FuseValidationError
from airflow_provider_fuse.operators.fuse import RESULT_XCOM_KEY, QueueCallsOperator
from airflow_provider_fuse.testing import FuseSimulator
from airflow_provider_fuse.triggers.fuse import FuseCallsTrigger
from tests.conftest import HANG, within
from tests.support import FakeStore, context, serve_xcom

HEADER = ["row", "call_id", "phone", "status", "attempts"]


def rows(count: int) -> list[dict[str, Any]]:
    return [{"phone_number": f"+1617555{n:04d}"} for n in range(100, 100 + count)]


def operator(**kwargs: Any) -> QueueCallsOperator:
    kwargs.setdefault("calls", rows(4))
    return QueueCallsOperator(
        task_id="campaign", application_id=11, deployment_id=22, poll_interval=0.02, timeout=30, **kwargs
    )


def table(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryFileSystem]:
    """A ``memory://`` scheme in Airflow's object storage: a remote bucket without a network."""
    from airflow.sdk.io import fs as airflow_fs

    memory = MemoryFileSystem()
    schemes = {**airflow_fs._register_filesystems(), "memory": lambda conn_id, options=None: memory}
    monkeypatch.setattr(airflow_fs, "_register_filesystems", lambda: schemes)
    yield memory
    memory.store.clear()


def test_a_deferred_campaign_writes_every_call_in_row_order_with_masked_numbers(
    sim: FuseSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim.script("+16175550101", "reject")
    target = tmp_path / "outcomes.csv"
    ctx = context(FakeStore())
    op = operator(deferrable=True, result_path=str(target))
    with pytest.raises(TaskDeferred) as info:
        op.execute(ctx)
    serve_xcom(monkeypatch, ctx["ti"])
    trigger = FuseCallsTrigger(**info.value.trigger.serialize()[1])

    async def wait() -> dict[str, Any]:
        (event,) = [event.payload async for event in trigger.run()]
        return event

    result = op.execute_complete(ctx, asyncio.run(within(HANG, wait(), "FuseCallsTrigger")))
    text = target.read_text()
    assert table(text) == [
        HEADER,
        ["1", "1", "+16***100", "completed", "1"],
        ["2", "2", "+16***101", "rejected", "1"],
        ["3", "3", "+16***102", "completed", "1"],
        ["4", "4", "+16***103", "completed", "1"],
    ]
    assert "6175550101" not in text and result["result_path"] == str(target)
    assert [p.name for p in tmp_path.iterdir()] == ["outcomes.csv"]  # nothing half-written left


@pytest.mark.parametrize("form", ["object storage path", "file url"])
def test_a_file_url_or_object_storage_path_names_the_local_file(
    sim: FuseSimulator, tmp_path: Path, form: str
) -> None:
    target = tmp_path / "out.csv"
    value = ObjectStoragePath(f"file://{target}") if form == "object storage path" else f"file://{target}"
    result = operator(wait_for_completion=False, result_path=value).execute(context(FakeStore()))
    assert [line[3] for line in table(target.read_text())[1:]] == ["queued"] * 4
    assert result["result_path"] == f"file://{target}"


def test_an_object_in_remote_storage_gets_the_table(sim: FuseSimulator, bucket: MemoryFileSystem) -> None:
    operator(result_path="memory://results/campaign.csv").execute(context(FakeStore()))
    assert table(bucket.cat("/results/campaign.csv").decode())[0] == HEADER
    assert len(table(bucket.cat("/results/campaign.csv").decode())) == 5


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("outcomes.csv", "It is relative"),
        ("/no/such/directory/outcomes.csv", "Its directory does not exist"),
        (42, "a int"),
        ("  ", "a str"),
    ],
)
def test_a_result_path_that_cannot_name_a_file_fails_before_any_call(
    sim: FuseSimulator, value: Any, complaint: str
) -> None:
    with pytest.raises(FuseValidationError, match="result_path") as info:
        operator(result_path=value).execute(context(FakeStore()))
    assert complaint in str(info.value)
    assert sim.requests("bulk_queue") == []


def test_a_table_that_cannot_be_written_fails_the_task_and_keeps_the_result_in_xcom(
    sim: FuseSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(path: Path, calls: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(result_file, "_write_local", full)
    ctx = context(FakeStore())
    with pytest.raises(
        FuseError, match=r"outcome table could not be written.*No space left.*calls were placed"
    ):
        operator(result_path=str(tmp_path / "out.csv")).execute(ctx)
    assert ctx["ti"].xcom[RESULT_XCOM_KEY]["totals"] == {"completed": 4}


def test_100000_calls_are_streamed_to_the_file_not_built_in_memory(tmp_path: Path) -> None:
    def calls() -> Iterator[CampaignCall]:
        for row in range(1, 100_001):
            yield CampaignCall(str(90_000_000 + 7 * row), row, "+16***123", "completed", 1)

    target = tmp_path / "big.csv"
    tracemalloc.start()
    try:
        result_file.write_result(str(target), calls())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    size = target.stat().st_size
    assert size > 3_000_000 and peak < size / 4, (size, peak)
    with target.open() as handle:
        assert sum(1 for _ in handle) == 100_001
