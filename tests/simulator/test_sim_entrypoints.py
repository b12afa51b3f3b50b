"""The three ways in: context manager, pytest fixture, console script."""

from __future__ import annotations

import importlib.metadata
import signal
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import requests

from airflow_provider_fuse import protocol
from airflow_provider_fuse.testing import FuseSimulator

from .conftest import NUMBER, PATIENCE, session, wait_until


def test_context_manager_serves_and_stops() -> None:
    with FuseSimulator(login="ops@example.com", password="k:ey/1") as sim:
        url, port = sim.url, sim.port
        assert url == f"http://127.0.0.1:{port}/api"
        assert sim.connection_uri == f"fuse://http://ops%40example.com:k%3Aey%2F1@127.0.0.1:{port}/api"
        assert sim.connection_env("my_fuse") == {"AIRFLOW_CONN_MY_FUSE": sim.connection_uri}
        client = session("ops@example.com", "k:ey/1")
        assert client.get(url + protocol.status_path(1)).status_code == 404
    with client, pytest.raises(requests.ConnectionError):  # not even on the kept-alive connection
        client.get(url + protocol.status_path(1), timeout=2)
    with pytest.raises(RuntimeError, match="not running"):
        _ = sim.url


def test_connection_uri_parses_as_airflow_connection(sim: FuseSimulator) -> None:
    from airflow.sdk import Connection

    conn = Connection.from_uri(sim.connection_uri, conn_id="fuse_default")
    assert (conn.conn_type, conn.host, conn.port, conn.schema) == (
        "fuse",
        "http://127.0.0.1",
        sim.port,
        "api",
    )
    assert (conn.login, conn.password) == ("dev@example.com", "dev-key")


def test_pytest_fixture_gives_a_running_simulator(fuse_simulator: FuseSimulator) -> None:
    with session() as client:
        answer = client.post(fuse_simulator.url + protocol.queue_path(1, 1), data={"phone_number": NUMBER})
    assert answer.status_code == 200
    assert fuse_simulator.requests("queue")[0].call_ids == [answer.json()["call_id"]]


def test_pytest_plugin_is_registered_and_import_cheap() -> None:
    plugins = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="pytest11")}
    assert plugins["fuse_simulator"] == "airflow_provider_fuse.testing.pytest_plugin"
    probe = (
        "import sys, airflow_provider_fuse.testing.pytest_plugin; "
        "print(sorted(m for m in ('airflow_provider_fuse.testing.simulator', 'http.server', 'airflow') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def start_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_fuse.testing.cli", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_cli_prints_the_connection_and_serves_until_signalled(stop_signal: signal.Signals) -> None:
    process = start_cli("--login", "me@example.com", "--password", "pw", "--outcome", f"{NUMBER}=busy:1")
    try:
        assert process.stdout is not None
        export, banner = process.stdout.readline().strip(), process.stdout.readline()
        name, _, quoted = export.removeprefix("export ").partition("=")
        assert name == "AIRFLOW_CONN_FUSE_DEFAULT" and quoted.startswith("'fuse://http://")
        uri = urlsplit(quoted.strip("'").removeprefix("fuse://"))
        assert (unquote(uri.username or ""), uri.password, uri.hostname) == (
            "me@example.com",
            "pw",
            "127.0.0.1",
        )
        base_url = f"http://127.0.0.1:{uri.port}{uri.path}"
        assert base_url in banner
        with session("me@example.com", "pw") as client:
            answer = client.post(
                base_url + protocol.queue_path(1, 1),
                data={"phone_number": NUMBER, "max_attempts": "2", "reattempt_wait": "60"},
            )
            status_url = base_url + protocol.status_path(answer.json()["call_id"])

            def events() -> list[str]:
                details = protocol.parse_status_response(client.get(status_url).json()) or {}
                return [e["event"] for e in details.get("events", [])]

            wait_until(lambda: "busy" in events())  # the scripted outcome, at 600x speed
        process.send_signal(stop_signal)
        assert process.wait(timeout=PATIENCE) == 0
        assert "queued call 1 to +16***234" in (process.stderr.read() if process.stderr else "")
    finally:
        process.kill()
        process.wait()


def test_cli_rejects_a_bad_outcome() -> None:
    process = start_cli("--outcome", "6175551234=voicemail")
    _, err = process.communicate(timeout=PATIENCE)
    assert process.returncode == 2
    assert "unknown outcome 'voicemail'" in err


def test_cli_rejects_a_negative_started_ago() -> None:
    process = start_cli("--started-ago", "-5")
    _, err = process.communicate(timeout=PATIENCE)
    assert process.returncode == 2
    assert "--started-ago: the number of seconds cannot be negative" in err


def test_cli_reports_a_busy_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        process = start_cli("--port", str(taken.getsockname()[1]))
        _, err = process.communicate(timeout=PATIENCE)
    assert process.returncode == 1
    assert "cannot listen on 127.0.0.1:" in err


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).with_name("fuse-simulator")
    answer = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
    assert "--outcome NUMBER=OUTCOME" in answer.stdout
