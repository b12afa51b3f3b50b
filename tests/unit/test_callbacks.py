"""Callbacks as tasks see them: the result_url Airflow builds, and reading what the plugin recorded."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_fuse import callbacks
from airflow_provider_fuse.callback_token import CallbackPurpose, verify_token
from airflow_provider_fuse.callbacks import (
    CHUNK_SIZE,
    HEAD_KEY,
    airflow_result_url,
    callback_outcome,
    callbacks_since,
    chunk_key,
    deployment_asset_name,
    resolve_result_url,
)
from airflow_provider_fuse.exceptions import FuseValidationError

SECRET = "c" * 43
TI = SimpleNamespace(dag_id="reminders", run_id="manual__1", task_id="call", map_index=-1)


def build(base_url: str | None = "https://airflow.example.com/", secret: str | None = SECRET) -> str:
    return airflow_result_url(
        conn_id="fuse_default",
        application_id=1234,
        deployment_id=5678,
        callback_secret=secret,
        ti=TI,
        base_url=base_url,
    )


def test_the_url_points_at_the_plugin_route_with_a_token_for_this_task_instance() -> None:
    url = build()
    assert url.startswith("https://airflow.example.com/fuse/callbacks/")
    token = url.rsplit("/", 1)[1]
    assert verify_token(token, SECRET) == CallbackPurpose(
        "fuse_default", "1234", "5678", "reminders", "manual__1", "call", -1
    )


def test_the_url_keeps_a_base_path_and_allows_plain_http_only_on_loopback() -> None:
    assert build("https://example.com/airflow").startswith("https://example.com/airflow/fuse/callbacks/")
    assert build("http://localhost:8080").startswith("http://localhost:8080/fuse/callbacks/")
    with pytest.raises(FuseValidationError, match=r"\[api\] base_url.*https"):
        build("http://airflow.example.com")


def test_a_refused_base_url_quotes_no_part_of_the_token() -> None:
    with pytest.raises(FuseValidationError) as refused:
        build("http://airflow.example.com")
    token = build().rsplit("/", 1)[1]
    payload, mac = token.split(".")
    assert payload[:8] not in str(refused.value) and mac[:8] not in str(refused.value)


def test_a_missing_base_url_or_secret_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FuseValidationError, match="callback_secret"):
        build(secret="")
    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    with pytest.raises(FuseValidationError, match=r"\[api\] base_url is not set.*AIRFLOW__API__BASE_URL"):
        build(base_url=None)
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://from-config.example.com")
    assert build(base_url=None).startswith("https://from-config.example.com/fuse/callbacks/")


def test_only_the_word_airflow_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com")
    kwargs: dict[str, Any] = dict(
        conn_id="fuse_default", application_id=1, deployment_id=2, callback_secret=SECRET, ti=TI
    )
    assert resolve_result_url(None, **kwargs) is None
    assert resolve_result_url("https://hooks.example.com/x", **kwargs) == "https://hooks.example.com/x"
    assert resolve_result_url(" Airflow ", **kwargs).startswith("https://airflow.example.com/fuse/callbacks/")


def test_the_asset_name_of_a_deployment() -> None:
    assert deployment_asset_name(1234, "5678") == "fuse://1234/5678"
    asset = callbacks.deployment_asset(1234, 5678)
    assert (asset.name, asset.uri) == ("fuse://1234/5678", "fuse://1234/5678")


def recorded(count: int, call_ids: dict[int, str] | None = None) -> dict[str, Any]:
    """XCom values as the plugin writes them for ``count`` callbacks."""
    values: dict[str, Any] = {HEAD_KEY: {"count": count}}
    for seq in range(count):
        details = {"call_id": (call_ids or {}).get(seq), "status": "completed", "phone_number": "16***123"}
        values.setdefault(chunk_key(seq // CHUNK_SIZE), []).append(
            {"seq": seq, "received_at": "2026-11-30T12:00:00+00:00", "details": details}
        )
    return values


@pytest.fixture
def xcom(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    values: dict[str, Any] = {}
    reads: list[str] = []

    async def aget(ti: Any, key: str) -> Any:
        assert ti is TI
        reads.append(key)
        return values.get(key)

    monkeypatch.setattr(callbacks, "_aget", aget)
    values["__reads__"] = reads
    return values


async def test_callbacks_since_reads_only_new_chunks(xcom: dict[str, Any]) -> None:
    reads = xcom["__reads__"]
    assert await callbacks_since(TI) == []
    assert reads == [HEAD_KEY]
    xcom.update(recorded(CHUNK_SIZE * 2 + 5))
    reads.clear()
    new = await callbacks_since(TI, seen=CHUNK_SIZE * 2 - 1)
    assert [e["seq"] for e in new] == list(range(CHUNK_SIZE * 2 - 1, CHUNK_SIZE * 2 + 5))
    assert reads == [HEAD_KEY, chunk_key(1), chunk_key(2)]


async def test_callback_outcome_takes_this_call_or_one_naming_none(xcom: dict[str, Any]) -> None:
    assert await callback_outcome(TI, "42") is None
    xcom.update(recorded(2, {0: "41"}))
    outcome = await callback_outcome(TI, "42")  # entry 1 names no call: taken as this one's
    assert outcome is not None and outcome["call_id"] == "42"
    xcom.update(recorded(2, {0: "42", 1: "41"}))
    outcome = await callback_outcome(TI, "42")
    assert outcome is not None and outcome["call_id"] == "42"
    xcom.update(recorded(1, {0: "41"}))
    assert await callback_outcome(TI, "42") is None


async def test_a_non_final_callback_after_the_final_one_does_not_hide_it(xcom: dict[str, Any]) -> None:
    xcom.update(recorded(2, {0: "42", 1: "42"}))
    xcom[chunk_key(0)][1]["details"]["status"] = "in progress"
    outcome = await callback_outcome(TI, "42")
    assert outcome is not None and outcome["status"] == "completed"
    xcom[chunk_key(0)][0]["details"]["status"] = "queued"
    assert await callback_outcome(TI, "42") is None


def test_the_record_is_read_through_the_task_sdk_supervisor_like_the_campaign_ids(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One way to read XCom for both (task_sdk_xcom): XCom.get_one in a thread, which Airflow 3.1 and
    3.2 have too (they have no XCom.aget_one)."""
    import asyncio

    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.comms import GetXCom, XComResult
    from airflow.sdk.execution_time.xcom import XCom

    asked: list[GetXCom] = []
    values = recorded(1, {0: "42"})

    class Supervisor:
        def send(self, msg: GetXCom) -> XComResult:
            asked.append(msg)
            return XComResult(key=msg.key, value=values.get(msg.key))

    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", Supervisor(), raising=False)
    monkeypatch.delattr(XCom, "aget_one", raising=False)  # as on Airflow 3.1 and 3.2
    outcome = asyncio.run(callback_outcome(TI, "42"))
    assert outcome is not None and outcome["status"] == "completed"
    assert [(m.key, m.dag_id, m.run_id, m.task_id, m.map_index) for m in asked] == [
        (key, TI.dag_id, TI.run_id, TI.task_id, -1) for key in (HEAD_KEY, chunk_key(0))
    ]
