"""The README's local paths: `make demo`, and "Next to a local Airflow" (`fuse-simulator` left running,
then the example DAG).

The simulator is the console script started with the README's own command line (on a free port), as a
separate process; `--started-ago` makes it behave as one started ten minutes before the DAG run, which
with the old clock (the calendar running 600x ahead from the start) expired the call before its first
dial. The DAG is the README's `fuse_appointment_reminder`, run with the real `airflow dags test`.
"""

from __future__ import annotations

import re
import select
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_fuse.testing.airflow_sandbox import AirflowSandbox

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DAG_ID, TASK_ID = "fuse_appointment_reminder", "remind_patient"
STARTED_AGO = 600  # real seconds: 100 simulated hours at 600x, far beyond the DAG's four-hour window
# Generous real-time bounds: they only limit how long a failure takes to show.
STARTUP_SECONDS = 120
DAG_SECONDS = 900


def readme_command() -> list[str]:
    """The `fuse-simulator ...` command line of the README's "Next to a local Airflow" bullet."""
    match = re.search(r"Next to a local Airflow: `(fuse-simulator [^`]+)`", (ROOT / "README.md").read_text())
    assert match, "the README no longer shows the fuse-simulator command"
    return shlex.split(match.group(1))


def free_port(args: list[str]) -> list[str]:
    """The command with ``--port 0``: tests run side by side, a fixed port may be taken."""
    at = args.index("--port")
    return [*args[:at], "--port", "0", *args[at + 2 :]]


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path, dict[str, str]]]:
    """The running console script, its log file and the connection it printed; Ctrl-C afterwards."""
    name, *args = free_port(readme_command())
    assert name == "fuse-simulator" and "--speed" in args and "--outcome" in args
    script = Path(sys.executable).with_name(name)
    log = tmp_path / "fuse-simulator.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [str(script), *args, "--started-ago", str(STARTED_AGO)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], STARTUP_SECONDS)
        assert ready, "fuse-simulator printed nothing"
        export = process.stdout.readline().strip()
        variable, _, value = export.removeprefix("export ").partition("=")
        assert variable == "AIRFLOW_CONN_FUSE_DEFAULT", export
        yield process, log, {variable: value.strip("'")}
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=STARTUP_SECONDS)
        finally:
            process.kill()


def test_the_readme_example_dag_completes_against_a_simulator_started_minutes_before(
    simulator: tuple[subprocess.Popen[str], Path, dict[str, str]],
) -> None:
    process, log, connection = simulator
    sandbox = AirflowSandbox([ROOT / "example_dags"])
    try:
        result = sandbox.dags_test(
            DAG_ID, env={**connection, "FUSE_EXAMPLE_POLL_INTERVAL": "1"}, timeout=DAG_SECONDS
        )
        assert result.ok, result.output[-4000:]
        details = sandbox.xcom(DAG_ID, TASK_ID)
    finally:
        sandbox.cleanup()
    assert details["status"] == "completed", details
    assert [event["event"] for event in details["events"]] == [
        "queued",
        *["dialing", "busy"] * 2,  # the README's --outcome +16175550123=busy:2
        "dialing",
        "connected",
        "disconnected",
    ]
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=STARTUP_SECONDS) == 0
    assert "queued call 1 to +16***123: scripted busy:2, will end completed" in log.read_text()


def test_make_demo_places_and_tracks_the_call(capsys: pytest.CaptureFixture[str]) -> None:
    from airflow_provider_fuse.testing import demo

    assert demo.main(["--dags", str(ROOT / "example_dags")]) == 0
    out = capsys.readouterr().out
    assert f"Task {TASK_ID}: success" in out
    assert re.search(r"status +completed\n +attempts +2 of 3\n", out), out
    # then the same kind of call with result_url="airflow": the outcome came by callback, no polling
    assert "1 queue request and 0 status requests; it POSTed the outcome to http://127.0.0.1:" in out
    assert "/fuse/callbacks/*** (HTTP 200)." in out
    assert "Fuse received 1 queue request" in out
