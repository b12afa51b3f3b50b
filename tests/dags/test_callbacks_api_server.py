"""Issue 16 on a real ``airflow api-server``: the simulator's callback reaches the plugin route.

A throwaway AIRFLOW_HOME; ``airflow dags test`` makes the task instance the token names; the
simulator queues a call whose ``result_url`` is built by ``airflow_result_url`` and POSTs the call's
details there when it ends, as Fuse does. The metadata database then holds the masked record and the
asset event; a replay changes nothing, a forged token gets 404, and the api-server's output (its
access log included) never shows the token nor the number.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests

from airflow_provider_fuse.callbacks import HEAD_KEY, airflow_result_url, chunk_key, deployment_asset_name
from airflow_provider_fuse.hooks.fuse import FuseHook
from airflow_provider_fuse.models import CallRequest
from airflow_provider_fuse.testing import FuseSimulator
from airflow_provider_fuse.testing.airflow_sandbox import AirflowSandbox

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

SECRET = "api-server-test-secret-" + "z" * 24
NUMBER = "+16175550123"
SERVER_START_TIMEOUT = 180.0  # a busy 2-core machine; a quiet one needs about 15 s


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowSandbox]:
    sandbox = AirflowSandbox([Path(__file__).parent / "callback_dags"], home=tmp_path_factory.mktemp("home"))
    sandbox.migrate()
    yield sandbox
    sandbox.cleanup()


def query(sandbox: AirflowSandbox, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(sandbox.home / "airflow.db") as db:
        return db.execute(sql, params).fetchall()


def connection(sim: FuseSimulator) -> str:
    return json.dumps(
        {
            "conn_type": "fuse",
            "host": sim.url,
            "login": sim.login,
            "password": sim.password,
            "extra": {"callback_secret": SECRET},
        }
    )


def wait_for(condition: Any, what: str, seconds: float = 120.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what}: not after {seconds:g} s")


def test_a_callback_from_the_simulator_is_recorded_once_through_the_real_api_server(
    airflow_home: AirflowSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox = airflow_home
    subprocess.run([sandbox.airflow, "dags", "reserialize"], env=sandbox.env(), check=True, timeout=300)
    assert sandbox.dags_test("callback_target").ok
    ((run_id,),) = query(sandbox, "SELECT run_id FROM dag_run WHERE dag_id = 'callback_target'")
    with FuseSimulator(speed=600) as sim:
        env = {"AIRFLOW_CONN_FUSE_DEFAULT": connection(sim)}
        with sandbox.api_server(env, timeout=SERVER_START_TIMEOUT) as base_url:
            ti = SimpleNamespace(dag_id="callback_target", run_id=run_id, task_id="call", map_index=-1)
            result_url = airflow_result_url(
                conn_id="fuse_default",
                application_id=1,
                deployment_id=2,
                callback_secret=SECRET,
                ti=ti,
                base_url=base_url,
            )
            token = result_url.rsplit("/", 1)[1]
            monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection(sim))
            FuseHook(backoff=0).queue_call(1, 2, CallRequest(NUMBER, result_url=result_url))
            sim.advance(3600)
            (delivery,) = wait_for(lambda: sim.callbacks, "the simulator's callback")
            assert delivery.status == 200, delivery

            def xcom(key: str) -> Any:
                rows = query(
                    sandbox,
                    "SELECT value FROM xcom WHERE dag_id = 'callback_target' AND task_id = 'call' AND key = ?",
                    key,
                )
                return json.loads(rows[0][0]) if rows else None

            assert xcom(HEAD_KEY) == {"count": 1}
            (entry,) = xcom(chunk_key(0))
            assert entry["details"]["status"] == "completed" and "***" in entry["details"]["phone_number"]
            events = query(
                sandbox,
                "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id WHERE a.name = ?",
                deployment_asset_name(1, 2),
            )
            assert [json.loads(extra)["call"]["status"] for (extra,) in events] == ["completed"]

            # a replay of the same body, and a forged token: nothing changes
            call = sim.call(delivery.call_ids[0])
            body = call.details_at(call.terminal_at)  # what the simulator POSTed
            replay = requests.post(result_url, json=body, timeout=60)
            assert (replay.status_code, replay.json()) == (200, {"status": "duplicate"})
            forged = requests.post(result_url[:-4] + "AAAA", json=body, timeout=60)
            assert forged.status_code == 404
            assert xcom(HEAD_KEY) == {"count": 1}
            assert len(query(sandbox, "SELECT id FROM asset_event")) == 1
    output = (sandbox.home / "api-server.log").read_text(errors="replace")
    # The access log wrote the path, redacted (Airflow 3.1's uvicorn log writes it percent-encoded).
    assert "/fuse/callbacks/***" in output or "/fuse/callbacks/%2A%2A%2A" in output
    assert token not in output and token.split(".")[1] not in output
    assert NUMBER[1:] not in output and SECRET not in output
