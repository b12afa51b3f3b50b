"""Issue 16 in the multi-process Airflow: outcomes by result_url callback, and the route's defences.

One stack for the module (scheduler, dag-processor, triggerer and api-server as separate processes,
the plugin mounted by the api-server from the installed package) and one simulator, which POSTs each
call's final details to its result_url the way Fuse does. A call task and a campaign task finish from
the callbacks alone: the simulator's ledger holds no status request. A DAG scheduled on the
deployment's asset handles every callback's event exactly once. Forged, altered, replayed, oversized
and mistyped callbacks against the real api-server are refused and change nothing.
"""

from __future__ import annotations

import base64
import contextlib
import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_fuse.callbacks import HEAD_KEY, deployment_asset_name
from tests import figures
from tests.stack.dags.fuse_callback_dags import APPLICATION_ID, CAMPAIGN_ROWS, DEPLOYMENT_ID
from tests.stack.stack import DEVELOPER_KEY, LOGIN, AirflowStack, SimControl, SimHostProcess, wait_for

pytestmark = [pytest.mark.stack, pytest.mark.timeout(900)]

DAGS = Path(__file__).parent / "dags" / "fuse_callback_dags.py"
SPEED = 600.0
SECRET = "stack-callback-secret-" + "k" * 24
#: A busy 2-core machine: a run that takes 20 s on a quiet one gets ten times that.
RUN_TIMEOUT = 400
#: The single call rings this long (real seconds) after it is queued: usually after its task deferred,
#: so that the api-server resumes the deferred task itself.
CALL_DELAY = 20


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuse-callbacks")


@pytest.fixture(scope="module")
def sim(home: Path) -> Iterator[SimControl]:
    host = SimHostProcess(["callbacks"], home, SPEED)
    try:
        yield host.sim("callbacks")
    finally:
        host.stop()


@pytest.fixture(scope="module")
def stack(home: Path, sim: SimControl) -> Iterator[AirflowStack]:
    env = {
        "AIRFLOW_CONN_FUSE_CALLBACKS": sim.connection(
            request_timeout=1, retry_limit=3, callback_secret=SECRET
        ),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
    }
    airflow = AirflowStack(home, [DAGS], env)
    try:
        airflow.start()
        airflow.wait_for_dags(["fuse_cb_call", "fuse_cb_campaign", "fuse_cb_outcomes"])
        for dag_id in ("fuse_cb_call", "fuse_cb_campaign", "fuse_cb_outcomes"):
            airflow.unpause(dag_id)
        yield airflow
    finally:
        airflow.stop()


@pytest.fixture(scope="module")
def runs(stack: AirflowStack, sim: SimControl) -> dict[str, str]:
    """Both runs started together; each test waits for the one it checks."""
    return {
        "fuse_cb_call": stack.trigger("fuse_cb_call", {"start": str(int(sim.now() + CALL_DELAY * SPEED))}),
        "fuse_cb_campaign": stack.trigger("fuse_cb_campaign"),
    }


def finished(stack: AirflowStack, dag_id: str, run_id: str) -> dict[str, Any]:
    assert stack.wait_run(dag_id, run_id, RUN_TIMEOUT) == "success", stack.task_instance(
        dag_id, run_id, "call"
    )
    return stack.task_instance(dag_id, run_id, "call")


def xcom_value(stack: AirflowStack, dag_id: str, run_id: str, key: str) -> Any:
    """An XCom as the metadata database holds it (the plugin writes plain JSON)."""
    with contextlib.closing(sqlite3.connect(stack.home / "airflow.db", timeout=60)) as db:
        row = db.execute(
            "SELECT value FROM xcom WHERE dag_id=? AND run_id=? AND task_id='call' AND key=?",
            (dag_id, run_id, key),
        ).fetchone()
    return None if row is None else json.loads(row[0])


def delivered(sim: SimControl, call_ids: list[str]) -> list[dict[str, Any]]:
    """The simulator's result_url deliveries of these calls that the api-server accepted."""
    return [e for e in sim.ledger("callback") if e["call_ids"][0] in call_ids and e["status"] == 200]


def test_a_call_task_finishes_from_its_callback_with_no_status_request(
    stack: AirflowStack, sim: SimControl, runs: dict[str, str]
) -> None:
    run_id = runs["fuse_cb_call"]
    ti = finished(stack, "fuse_cb_call", run_id)
    assert ti["try_number"] == 1
    result = stack.xcom("fuse_cb_call", run_id, "call")
    (queued,) = [e for e in sim.ledger("queue") if e["form"]["phone_number"] == "tel:+16175550300"]
    assert result["status"] == "completed" and result["call_id"] == queued["call_ids"][0]
    assert queued["form"]["result_url"].startswith(f"{stack.url}/fuse/callbacks/")
    (callback,) = delivered(sim, queued["call_ids"])
    assert sim.ledger("status") == [], "no status request for a call whose callback arrived"
    assert xcom_value(stack, "fuse_cb_call", run_id, HEAD_KEY) == {"count": 1}
    figures.callback_to_success(datetime.fromisoformat(ti["end_date"]).timestamp() - callback["time"])


def test_a_campaign_task_finishes_from_its_callbacks_with_no_status_request(
    stack: AirflowStack, sim: SimControl, runs: dict[str, str]
) -> None:
    run_id = runs["fuse_cb_campaign"]
    finished(stack, "fuse_cb_campaign", run_id)
    result = stack.xcom("fuse_cb_campaign", run_id, "call")
    call_ids = [i for e in sim.ledger("bulk_queue") for i in e["call_ids"]]
    assert len(call_ids) == len(CAMPAIGN_ROWS) and result["totals"] == {"completed": len(CAMPAIGN_ROWS)}
    assert sorted(c[0] for c in result["calls"]) == sorted(call_ids)
    assert len(delivered(sim, call_ids)) == len(CAMPAIGN_ROWS)
    assert sim.ledger("status") == []
    log = stack.log("fuse_cb_campaign", run_id, "call", 1)
    assert f"0 status requests, {len(CAMPAIGN_ROWS)} outcomes by callback" in log


def test_a_dag_scheduled_on_the_asset_handles_each_callback_once(
    stack: AirflowStack, sim: SimControl, runs: dict[str, str]
) -> None:
    finished(stack, "fuse_cb_call", runs["fuse_cb_call"])
    finished(stack, "fuse_cb_campaign", runs["fuse_cb_campaign"])
    callbacks = len(delivered(sim, list(sim.calls())))
    name = deployment_asset_name(APPLICATION_ID, DEPLOYMENT_ID)
    (asset,) = [a for a in stack.get("/assets", limit=100)["assets"] if a["name"] == name]
    events = stack.get("/assets/events", asset_id=asset["id"], limit=100)["asset_events"]
    assert len(events) == callbacks == 1 + len(CAMPAIGN_ROWS)
    assert all(e["extra"]["call"]["phone_number"].count("*") >= 3 for e in events), "masked numbers only"

    def handled() -> list[int] | None:
        runs = stack.get("/dags/fuse_cb_outcomes/dagRuns", limit=100)["dag_runs"]
        if not runs or any(r["state"] != "success" for r in runs):
            return None
        ids = [
            e["id"]
            for r in runs
            for e in stack.get(f"/dags/fuse_cb_outcomes/dagRuns/{r['dag_run_id']}/upstreamAssetEvents")[
                "asset_events"
            ]
        ]
        return ids if len(ids) >= callbacks else None

    ids = wait_for("the asset's DAG to handle every callback", handled, RUN_TIMEOUT, interval=2)
    assert sorted(ids) == sorted(e["id"] for e in events), "each event handled by exactly one run"


def _token(sim: SimControl) -> str:
    (queued,) = [e for e in sim.ledger("queue") if e["form"]["phone_number"] == "tel:+16175550300"]
    return str(queued["form"]["result_url"]).rsplit("/", 1)[1]


def _state(stack: AirflowStack, run_id: str) -> tuple[Any, ...]:
    """What a callback can change: the call task's record and state, and the asset's events."""
    record = [xcom_value(stack, "fuse_cb_call", run_id, key) for key in (HEAD_KEY, f"{HEAD_KEY}_0")]
    events = stack.get("/assets/events", limit=100)["total_entries"]
    return (*record, stack.task_instance("fuse_cb_call", run_id, "call")["state"], events)


def test_forged_altered_replayed_oversized_and_mistyped_callbacks_change_nothing(
    stack: AirflowStack, sim: SimControl, runs: dict[str, str]
) -> None:
    run_id = runs["fuse_cb_call"]
    finished(stack, "fuse_cb_call", run_id)
    finished(stack, "fuse_cb_campaign", runs["fuse_cb_campaign"])
    token = _token(sim)
    purpose, mac = token.split(".")
    (call_id,) = [
        e["call_ids"][0] for e in sim.ledger("queue") if e["form"]["phone_number"] == "tel:+16175550300"
    ]
    # The body Fuse delivered, as its status answer holds it (read after the no-status checks above).
    status = requests.get(
        f"http://127.0.0.1:{sim.port}/api/outbound/{call_id}", auth=(LOGIN, DEVELOPER_KEY), timeout=60
    )
    body = json.dumps(status.json()["call_details"])
    other = json.loads(base64.urlsafe_b64decode(purpose + "=" * (-len(purpose) % 4)))
    other[3:6] = ["fuse_cb_campaign", runs["fuse_cb_campaign"], "call"]
    other_purpose = (
        base64.urlsafe_b64encode(json.dumps(other, separators=(",", ":")).encode()).rstrip(b"=").decode()
    )
    forged_mac = ("A" if mac[0] != "A" else "B") + mac[1:]
    json_type = {"Content-Type": "application/json"}
    before = _state(stack, run_id)

    def post(path_token: str, data: bytes | str, headers: dict[str, str]) -> requests.Response:
        return requests.post(
            f"{stack.url}/fuse/callbacks/{path_token}", data=data, headers=headers, timeout=120
        )

    assert post(f"{purpose}.{forged_mac}", body, json_type).status_code == 404, "forged token"
    assert post(f"{other_purpose}.{mac}", body, json_type).status_code == 404, "token of another task"
    replay = post(token, body, json_type)
    assert (replay.status_code, replay.json()) == (200, {"status": "duplicate"}), "replayed callback"
    oversized = json.dumps({"status": "completed", "padding": "x" * 70_000})
    assert post(token, oversized, json_type).status_code == 413, "oversized body"
    assert post(token, body, {"Content-Type": "text/plain"}).status_code == 415, "wrong content type"
    assert _state(stack, run_id) == before
