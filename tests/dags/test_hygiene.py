"""Log, XCom, event and error hygiene: nothing Airflow prints or keeps of a call holds a secret.

Every example DAG and a PCI DAG run with the real ``airflow dags test`` against the simulator. Then
everything Airflow printed or kept is searched: the command's output, every file under
AIRFLOW_HOME/logs (``dags test`` prints the task and trigger logs instead of writing files; the
multi-process suite checks its log files for the key), every XCom value, the trigger rows and the
events handed back to tasks. None may hold the developer key (plain, or inside a Basic auth header),
a full phone number that reached the simulator (callees, caller ids, campaign rows), the post-dial
digits, or the variables of ``is_pci`` calls. Rendered template fields are the documented exception:
a test below shows that they do hold the number, as for any templated Airflow operator (not the
``is_pci`` variables: the operator registers them with the secrets masker).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_fuse import protocol
from airflow_provider_fuse.exceptions import FuseError, FuseValidationError
from airflow_provider_fuse.hooks.fuse import FuseHook
from airflow_provider_fuse.models import CallRequest
from airflow_provider_fuse.testing import FuseSimulator
from airflow_provider_fuse.testing.airflow_sandbox import AirflowSandbox, DagTestResult
from airflow_provider_fuse.triggers.fuse import FuseCallTrigger
from airflow_provider_fuse.waiting import outcome_from_event
from tests.dags.hygiene_dags import fuse_hygiene_dags as pci

pytestmark = pytest.mark.e2e
#: The first test to use ``world`` runs every DAG (about 2 minutes on a quiet machine).
RUNS_EVERY_DAG = pytest.mark.timeout(1200)

ROOT = Path(__file__).resolve().parents[2]
HYGIENE_DAG = Path(pci.__file__)
LOGIN = "hygiene@example.com"
DEVELOPER_KEY = "dk-HYGIENE-SECRET-5f2c81"
BASIC_AUTH = base64.b64encode(f"{LOGIN}:{DEVELOPER_KEY}".encode()).decode()
PCI_MARKERS = (pci.PCI_NAME, pci.PCI_VALUE, "PCI-MARKER-6042", pci.POST_DIAL_PIN.rstrip("#"))
#: The documented mitigation for rendered template fields: Airflow masks values under these keys.
SENSITIVE_NAMES = "phone_number,caller_id,post_dial,card_hint,amount_due"


#: Example DAGs whose call comes from a Deadline Alert: `dags test` has no scheduler to see a deadline
#: missed, so they run here without calling (tests/stack/test_deadline_alert.py runs one end to end).
CALLS_ONLY_WHEN_LATE = {"fuse_deadline_alert"}


def example_dag_ids() -> list[str]:
    found = []
    for path in sorted((ROOT / "example_dags").glob("*.py")):
        found += re.findall(r'dag_id="([^"]+)"', path.read_text())
    return found


@dataclass
class World:
    """What the DAG runs left behind, and what reached the simulator."""

    sandbox: AirflowSandbox
    results: dict[str, DagTestResult]
    requests: dict[str, list[Any]]
    #: The PCI DAG run again with ``[core] sensitive_var_conn_names`` set.
    masked: DagTestResult

    def texts(self) -> list[tuple[str, str]]:
        """(where, text) of everything printed or kept, rendered template fields excepted."""
        found = [(f"`airflow dags test {dag_id}` output", r.output) for dag_id, r in self.results.items()]
        found.append(
            ("`airflow dags test fuse_hygiene_pci` output (sensitive_var_conn_names)", self.masked.output)
        )
        for path in sorted((self.sandbox.home / "logs").rglob("*")):
            if path.is_file():
                found.append((str(path.relative_to(self.sandbox.home)), path.read_text(errors="replace")))
        with sqlite3.connect(self.sandbox.home / "airflow.db") as db:
            for table, column in (("xcom", "value"), ("trigger", "kwargs"), ("task_instance", "next_kwargs")):
                for (value,) in db.execute(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL"):
                    found.append((f"{table}.{column}", value if isinstance(value, str) else repr(value)))
        return found

    def numbers(self) -> set[str]:
        """Every phone number that reached the simulator (destinations, caller ids, campaign rows)."""
        uris = [e.form.get(protocol.PHONE_NUMBER, "") for e in self.all("queue")]
        for entry in self.all("bulk_queue"):
            uris += [destination for destination, _ in protocol.parse_bulk_csv(entry.form["csv"])]
        numbers = set()
        for uri in uris:
            match = protocol.PHONE_NUMBER_PATTERN.fullmatch(uri.strip())
            assert match, uri
            numbers.update(n for n in (match["digits"], match["ani"]) if n)
        return {n.lstrip("+") for n in numbers}

    def all(self, endpoint: str) -> list[Any]:
        return [e for entries in self.requests.values() for e in entries if e.endpoint == endpoint]


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    sandbox = AirflowSandbox([ROOT / "example_dags", HYGIENE_DAG])
    results: dict[str, DagTestResult] = {}
    requests: dict[str, list[Any]] = {}
    try:
        with FuseSimulator(speed=600, login=LOGIN, password=DEVELOPER_KEY) as sim:
            sim.script(pci.REJECTING_NUMBER, "reject")
            env = {**sim.connection_env(), "FUSE_EXAMPLE_POLL_INTERVAL": "0.5"}
            for dag_id in [*example_dag_ids(), "fuse_hygiene_pci"]:
                before = len(sim.ledger)
                results[dag_id] = sandbox.dags_test(dag_id, env=env, timeout=240)
                requests[dag_id] = sim.ledger[before:]
            env["AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES"] = SENSITIVE_NAMES
            masked = sandbox.dags_test("fuse_hygiene_pci", env=env, timeout=240)
        yield World(sandbox, results, requests, masked)
    finally:
        sandbox.cleanup()


def leaks(world: World, needles: list[str]) -> list[str]:
    return [f"{needle!r} in {where}" for where, text in world.texts() for needle in needles if needle in text]


@RUNS_EVERY_DAG
def test_every_dag_ran_against_the_simulator(world: World) -> None:
    """Not vacuous: each DAG reached Fuse, the PCI data was really sent, and the logs were written."""
    assert len(world.results) >= 4
    for dag_id, requests in world.requests.items():
        if dag_id in CALLS_ONLY_WHEN_LATE:
            continue
        assert any(e.endpoint in ("queue", "bulk_queue") for e in requests), (
            f"{dag_id} placed no call: {world.results[dag_id].task_states} {world.results[dag_id].output[-1500:]}"
        )
    assert world.results["fuse_hygiene_pci"].task_states == {"pci_call": "success", "pci_rejected": "failed"}
    sent = {
        e.form[protocol.PHONE_NUMBER]: e.form
        for e in world.requests["fuse_hygiene_pci"]
        if e.endpoint == "queue"
    }
    pci_form = sent[f"tel:{pci.PCI_NUMBER};ani={pci.CALLER_ID};postd={pci.POST_DIAL_PIN}"]
    assert pci_form[protocol.IS_PCI] == "1"
    assert pci.PCI_VALUE in pci_form["call_parameters"] and "PCI-MARKER-6042" in pci_form["call_parameters"]
    assert f"tel:{pci.ON_CALL_NUMBER};ani={pci.CALLER_ID}" in sent, "the failure callback phoned on-call"
    output = world.results["fuse_hygiene_pci"].output  # `dags test` prints the task logs, trigger's included
    assert (
        "Queued Fuse call" in output and "PCI (variables withheld)" in output and "FuseCallFailed" in output
    )
    assert pci.PCI_NUMBER.lstrip("+") in world.numbers() and pci.CALLER_ID.lstrip("+") in world.numbers()


@RUNS_EVERY_DAG
def test_the_developer_key_appears_nowhere(world: World) -> None:
    assert leaks(world, [DEVELOPER_KEY, BASIC_AUTH]) == []


@RUNS_EVERY_DAG
def test_no_full_phone_number_appears_anywhere(world: World) -> None:
    """Masked numbers show at most half their digits; ten digits in a row is a leak."""
    numbers = world.numbers()
    assert len(numbers) >= 5
    needles = sorted({n[-10:] for n in numbers if len(n) >= 8})
    assert leaks(world, needles) == []
    masked = [text for _, text in world.texts() if "16***166" in text]
    assert masked, "the PCI call's masked number is logged (the check above looked in the right places)"


@RUNS_EVERY_DAG
def test_pci_variables_and_post_dial_digits_appear_nowhere(world: World) -> None:
    assert leaks(world, list(PCI_MARKERS)) == []


def rendered_fields(world: World) -> list[dict[str, dict[str, Any]]]:
    """The PCI DAG's rendered template fields per run, oldest run first: {task_id: fields}."""
    with sqlite3.connect(world.sandbox.home / "airflow.db") as db:
        runs = [
            r
            for (r,) in db.execute(
                "SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id", ("fuse_hygiene_pci",)
            )
        ]
        rows = db.execute(
            "SELECT run_id, task_id, rendered_fields FROM rendered_task_instance_fields WHERE dag_id = ?",
            ("fuse_hygiene_pci",),
        ).fetchall()
    return [{task: json.loads(fields) for run, task, fields in rows if run == run_id} for run_id in runs]


@RUNS_EVERY_DAG
def test_rendered_template_fields_hold_the_number_but_not_the_pci_variables(world: World) -> None:
    """The documented exception (docs/guarantees.md): Airflow stores rendered fields as rendered, but
    the variables of an ``is_pci`` call are registered with its secrets masker once rendered."""
    plain, _ = rendered_fields(world)
    assert plain["pci_call"]["phone_number"] == pci.PCI_NUMBER
    assert plain["pci_call"]["variables"] == {pci.PCI_NAME: "***", "amount_due": "***"}


@RUNS_EVERY_DAG
def test_sensitive_var_conn_names_hides_them_from_rendered_fields(world: World) -> None:
    """The documented mitigation: ``[core] sensitive_var_conn_names`` masks those keys' values."""
    assert world.masked.task_states == {"pci_call": "success", "pci_rejected": "failed"}
    _, masked = rendered_fields(world)
    call = masked["pci_call"]
    assert (call["phone_number"], call["caller_id"], call["post_dial"]) == ("***", "***", "***")
    assert call["variables"] == {pci.PCI_NAME: "***", "amount_due": "***"}
    assert pci.PCI_NUMBER not in json.dumps(masked) and pci.PCI_VALUE not in json.dumps(masked)


# --- in-process: the masker, trigger events and exception texts -----------------------------------


@pytest.fixture
def live(monkeypatch: pytest.MonkeyPatch) -> Iterator[FuseSimulator]:
    with FuseSimulator(speed=600, login=LOGIN, password=DEVELOPER_KEY) as sim:
        monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", sim.connection_uri)
        monkeypatch.setattr(FuseHook, "backoff", 0)
        yield sim


def _secrets_masker() -> Any:
    try:
        from airflow.sdk.log import _secrets_masker  # Airflow 3.3
    except ImportError:  # Airflow 3.1 and 3.2
        from airflow.sdk._shared.secrets_masker import _secrets_masker
    return _secrets_masker()


def test_the_password_is_registered_with_the_secrets_masker(monkeypatch: pytest.MonkeyPatch) -> None:
    key = "dk-SYNC-HYGIENE-7c3d"  # its own key: the masker is process-wide, other tests register theirs
    monkeypatch.setenv(
        "AIRFLOW_CONN_FUSE_SYNC",
        json.dumps({"conn_type": "fuse", "host": "http://127.0.0.1:9/api", "login": LOGIN, "password": key}),
    )
    masker = _secrets_masker()
    assert key in masker.redact(f"key {key}"), "before the connection is read, nothing hides the key"
    settings = FuseHook("fuse_sync").settings  # reading the connection is what registers the password
    assert key not in masker.redact(f"key {key}")
    assert key not in str(settings) and key not in repr(settings)


def test_the_async_connection_read_registers_the_password_too(monkeypatch: pytest.MonkeyPatch) -> None:
    other_key = "dk-ASYNC-HYGIENE-90e1"
    monkeypatch.setenv(
        "AIRFLOW_CONN_FUSE_ASYNC",
        json.dumps(
            {"conn_type": "fuse", "host": "http://127.0.0.1:9/api", "login": LOGIN, "password": other_key}
        ),
    )
    masker = _secrets_masker()
    assert other_key in masker.redact(f"key {other_key}")
    asyncio.run(FuseHook("fuse_async").asettings())
    assert other_key not in masker.redact(f"key {other_key}")


def _events(call_id: str, deadline: float | None = None) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        return [
            e.payload async for e in FuseCallTrigger(call_id, poll_interval=0.05, deadline=deadline).run()
        ]

    return asyncio.run(run())


def test_trigger_events_and_error_texts_of_pci_calls_hold_no_number_or_variable(live: FuseSimulator) -> None:
    live.script(pci.REJECTING_NUMBER, "reject")
    hook = FuseHook()
    texts: list[str] = []

    def pci_request(number: str, **kwargs: Any) -> CallRequest:
        return CallRequest(
            number, caller_id=pci.CALLER_ID, post_dial=pci.POST_DIAL_PIN, is_pci=True,
            variables={pci.PCI_NAME: pci.PCI_VALUE}, **kwargs,
        )  # fmt: skip

    for number in (pci.PCI_NUMBER, pci.REJECTING_NUMBER):
        request = pci_request(number)
        texts.append(request.describe())
        (event,) = _events(hook.queue_call(1, 2, request))
        texts.append(json.dumps(event))
        try:
            texts.append(json.dumps(outcome_from_event(event)))
        except FuseError as error:
            texts.append(str(error))
    pending = hook.queue_call(1, 2, pci_request(pci.PCI_NUMBER, start_timestamp=live.now() + 10**7))
    (timeout,) = _events(pending, deadline=0.0)
    texts.append(json.dumps(timeout))
    with pytest.raises(FuseError) as timed_out:
        outcome_from_event(timeout)
    texts.append(str(timed_out.value))
    for bad in (
        {"phone_number": pci.PCI_NUMBER + "99999"},
        {"phone_number": f"tel:{pci.PCI_NUMBER};pin={pci.POST_DIAL_PIN}"},
        {"phone_number": pci.PCI_NUMBER, "caller_id": pci.CALLER_ID + "x"},
        {"phone_number": pci.PCI_NUMBER, "post_dial": pci.POST_DIAL_PIN + "!"},
    ):
        with pytest.raises(FuseValidationError) as invalid:
            CallRequest(**bad)
        texts.append(str(invalid.value))
    assert {e["status"] for e in (json.loads(t) for t in texts if t.startswith("{"))} >= {
        "completed",
        "rejected",
        "timeout",
    }
    joined = "\n".join(texts)
    for needle in (
        *PCI_MARKERS,
        DEVELOPER_KEY,
        *(n.lstrip("+")[-10:] for n in (pci.PCI_NUMBER, pci.REJECTING_NUMBER)),
    ):
        assert needle not in joined, f"{needle!r} in {joined}"
