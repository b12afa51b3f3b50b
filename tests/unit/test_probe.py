"""fuse-probe against the simulator: good credentials, bad credentials, an unreachable host, --live."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_fuse import probe
from airflow_provider_fuse.testing import FuseSimulator

NUMBER = "+16175551234"


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[FuseSimulator]:
    with FuseSimulator(bulk_answer="success_only", variables_format="fields") as simulator:
        for name, value in simulator.connection_env().items():
            monkeypatch.setenv(name, value)
        yield simulator


def verdicts(path: Path) -> dict[str, str]:
    return {f["topic"]: f["verdict"] for f in json.loads(path.read_text())["findings"]}


def test_good_credentials_exit_0_and_place_no_call(
    sim: FuseSimulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "probe.json"
    assert probe.main(["--conn-id", "fuse_default", "--json", str(report)]) == probe.EXIT_OK
    out = capsys.readouterr().out
    assert "Authenticated: yes" in out and "variables format: fields" in out
    assert "[confirmed]" in out and "[not checked]" in out
    found = verdicts(report)
    assert found["not-found probe"] == "confirmed"
    assert found['error body {"error": ...}'] == "confirmed"
    assert found["not-found probe: JSON answers"] == "confirmed"
    assert found["status answer"] == "not checked"
    assert sim.requests("queue") == [] and sim.requests("bulk_queue") == []  # read-only
    assert [entry.endpoint for entry in sim.ledger] == ["status"]
    assert sim.password not in report.read_text() and sim.password not in out


def test_bad_credentials_exit_non_zero_with_the_reason(
    sim: FuseSimulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", sim.connection_uri.replace("dev-key", "wrong-key"))
    assert probe.main([]) == probe.EXIT_REJECTED
    out = capsys.readouterr().out
    assert "Authenticated: NO (HTTP 401, credentials rejected: invalid login or developer key)" in out
    assert "wrong-key" not in out


def test_an_unreachable_host_exits_non_zero_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as closed:  # a port nobody listens on once the socket is closed
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", f"fuse://http://dev%40example.com:k@127.0.0.1:{port}/api")
    assert probe.main([]) == probe.EXIT_UNREACHABLE
    assert (
        "Authenticated: NO (unreachable: GET /outbound/0 could not connect to Fuse" in capsys.readouterr().out
    )


def test_call_id_reports_the_shape_and_status_of_an_existing_call(sim: FuseSimulator, tmp_path: Path) -> None:
    from airflow_provider_fuse.hooks.fuse import FuseHook
    from airflow_provider_fuse.models import CallRequest

    call_id = FuseHook().queue_call(1, 2, CallRequest(NUMBER))
    sim.advance(600)  # the call has completed
    report = tmp_path / "probe.json"
    assert probe.main(["--call-id", call_id, "--json", str(report)]) == probe.EXIT_OK
    found = verdicts(report)
    assert found[f'call {call_id}: {{"call_details": {{...}}}}'] == "confirmed"
    assert found[f"call {call_id}: status values"] == "confirmed"
    assert found[f"call {call_id}: start/end_timestamp"] == "confirmed"
    detail = next(
        f["detail"] for f in json.loads(report.read_text())["findings"] if "call_details" in f["topic"]
    )
    assert "'phone_number': 'str'" in detail and "6175551234" not in report.read_text()


def test_live_queues_one_call_and_one_bulk_row_and_reports_both_answers(
    sim: FuseSimulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "probe.json"
    argv = ["--live", "--application-id", "1", "--deployment-id", "2", "--phone", NUMBER]
    code = probe.main([*argv, "--yes-place-one-real-call", "--json", str(report)])
    assert code == probe.EXIT_OK
    (queued,) = sim.requests("queue")
    (bulk,) = sim.requests("bulk_queue")
    assert sim.variables(queued.call_ids[0]) == probe.PROBE_VARIABLE  # in the connection's format
    assert sim.variables(bulk.call_ids[0]) == probe.PROBE_VARIABLE
    assert sim.requests("cancel") == []  # never cancels
    found = verdicts(report)
    assert found['queue answer {"call_id": ...}'] == "confirmed"
    assert found["queue answer Link header"] == "confirmed"
    assert found['bulk_queue answer {"call_ids": [...]}'] == "contradicted"  # success_only
    assert found["variables format 'fields'"] == "not checked"
    text = report.read_text()
    assert "6175551234" not in text and "+16***234" in text and sim.password not in text
    assert probe.NEVER_CANCELS in capsys.readouterr().out


def test_live_without_the_confirmation_is_refused_before_anything_is_sent(
    sim: FuseSimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        probe.main(["--live", "--application-id", "1", "--deployment-id", "2", "--phone", NUMBER])
    assert caught.value.code == 2
    assert "--yes-place-one-real-call" in capsys.readouterr().err
    assert sim.ledger == []


def test_python_dash_m_runs_the_probe(sim: FuseSimulator) -> None:
    env = {**os.environ, **sim.connection_env()}
    done = subprocess.run(
        [sys.executable, "-m", "airflow_provider_fuse.probe"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Authenticated: yes" in done.stdout


def test_a_failed_tls_handshake_is_reported_as_such(sim: FuseSimulator, tmp_path: Path) -> None:
    conn = {
        "conn_type": "fuse",
        "host": f"https://127.0.0.1:{sim.port}/api",
        "login": sim.login,
        "password": "k",
    }
    report = tmp_path / "probe.json"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", json.dumps(conn))
        assert probe.main(["--json", str(report)]) == probe.EXIT_UNREACHABLE  # a plain-http server
    assert verdicts(report)["TLS"] == "contradicted"
    assert json.loads(report.read_text())["reason"].startswith("unreachable:")
