"""Each variables format round-trips: FuseHook and the notifier send it, FuseSimulator reads and records it."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from airflow_provider_fuse import protocol, resume
from airflow_provider_fuse.hooks.fuse import FuseHook
from airflow_provider_fuse.models import CallRequest
from airflow_provider_fuse.testing import FuseSimulator

NUMBER = "+16175551234"
VARIABLES = {"name": "Ann Lee", "slot": "Tue 9:00 & 9:30", "n": "3"}


@pytest.fixture(params=protocol.VARIABLES_FORMATS)
def formatted_sim(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[FuseSimulator]:
    """A simulator reading one variables format, behind a fuse_default connection that sends it."""
    monkeypatch.setattr(FuseHook, "backoff", 0)
    with FuseSimulator(variables_format=request.param, variables_field="vars") as sim:
        for name, value in sim.connection_env().items():
            monkeypatch.setenv(name, value)
        yield sim


def test_a_single_call_round_trips_its_variables(formatted_sim: FuseSimulator) -> None:
    call_id = FuseHook().queue_call(1, 2, CallRequest(NUMBER, variables=VARIABLES))
    assert formatted_sim.variables(call_id) == VARIABLES
    (entry,) = formatted_sim.requests("queue")
    assert entry.call_ids == [call_id] and entry.variables == [VARIABLES]  # recorded per call


def test_the_notifier_sends_the_configured_format(
    formatted_sim: FuseSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk import DAG

    from airflow_provider_fuse.notifications.fuse import FuseCallNotifier

    monkeypatch.setattr(resume, "_process_memory", {})
    ti = SimpleNamespace(dag_id="nightly", run_id="r1", task_id="load", map_index=-1, try_number=1)
    context = {"ti": ti, "run_id": "r1", "dag": DAG("nightly", schedule=None), "exception": ValueError("x")}
    notifier = FuseCallNotifier(
        application_id=1, deployment_id=2, phone_number=NUMBER, variables={"dag": "{{ dag.dag_id }}"}
    )
    notifier(context)
    (entry,) = formatted_sim.requests("queue")
    assert entry.processed and formatted_sim.variables(entry.call_ids[0]) == {"dag": "nightly"}


def test_a_campaign_sends_csv_columns_whatever_the_format(formatted_sim: FuseSimulator) -> None:
    call_ids = FuseHook().queue_calls(1, 2, [CallRequest(NUMBER, variables=VARIABLES)])
    assert call_ids is not None
    (upload,) = formatted_sim.requests("bulk_queue")
    assert upload.form[protocol.BULK_CSV_FIELD].splitlines()[0] == "destination,name,slot,n"
    assert formatted_sim.variables(call_ids[0]) == VARIABLES and upload.variables == [VARIABLES]


def test_a_format_the_sender_did_not_use_arrives_without_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the issue fears: a wrong guess loses every variable silently. The probe exists for this."""
    with FuseSimulator(variables_format="fields") as sim:
        json_format = sim.connection_uri.split("?")[0]  # the connection without the simulator's extras
        monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", json_format)
        call_id = FuseHook().queue_call(1, 2, CallRequest(NUMBER, variables={"name": "Ann"}))
        assert sim.variables(call_id) == {"call_parameters": '{"name":"Ann"}'}
    with FuseSimulator(variables_format="bracketed") as sim:
        monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", sim.connection_uri.split("?")[0])
        call_id = FuseHook().queue_call(1, 2, CallRequest(NUMBER, variables={"name": "Ann"}))
        assert sim.variables(call_id) == {}


def test_the_simulator_refuses_an_unknown_format() -> None:
    with pytest.raises(ValueError, match="variables_format"):
        FuseSimulator(variables_format="xml")
