"""``make demo``: place and track a call with the example DAG against a local FuseSimulator.

Runs the real ``airflow dags test fuse_appointment_reminder`` (deferred wait in the triggerer
included) in a throwaway AIRFLOW_HOME, then prints what happened to the call. Then the same kind of
call with ``result_url="airflow"``: an ``airflow api-server`` (with the provider's plugin) receives
the simulator's callback, and the task learns the outcome from it with no status request.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow_provider_fuse.testing.airflow_sandbox import AirflowSandbox
from airflow_provider_fuse.testing.simulator import FuseSimulator

DAG_ID = "fuse_appointment_reminder"
TASK_ID = "remind_patient"
PATIENT = "+16175550123"
# About 10 s on a quiet machine; the bound only stops a stuck run, so it leaves room for a busy one.
DAG_TIMEOUT = 900
CALLBACK_DAG_ID = "fuse_callback_reminder"
CALLBACK_PATIENT = "+16175550124"
#: Signs the demo's callback addresses (the connection's callback_secret extra).
CALLBACK_SECRET = "demo-callback-secret-0123456789abcdef"
#: The call of the second part, written into the sandbox's dags folder.
CALLBACK_DAG = f'''"""A reminder whose outcome Fuse pushes to Airflow: result_url="airflow" (make demo)."""
import pendulum
from airflow.sdk import DAG

from airflow_provider_fuse.operators.fuse import QueueCallOperator

with DAG(dag_id="{CALLBACK_DAG_ID}", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False):
    QueueCallOperator(
        task_id="{TASK_ID}",
        application_id=1001,
        deployment_id=2002,
        phone_number="{CALLBACK_PATIENT}",
        result_url="airflow",
        deferrable=True,
        poll_interval=1,
        timeout=600,
    )
'''


def summary(details: dict[str, Any]) -> list[str]:
    lines = [
        f"  call id    {details['call_id']}",
        f"  number     {details['phone_number']}",
        f"  status     {details['status']}",
        f"  attempts   {details['attempts']} of {details['max_attempts']}",
        f"  duration   {details['duration']} s connected",
        "  timeline   (simulated clock, UTC)",
    ]
    for event in details["events"]:
        lines.append(f"    {datetime.fromisoformat(event['at']):%H:%M:%S}  {event['event']}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--dags", type=Path, default=Path("example_dags"), help="folder with the example DAGs"
    )
    parser.add_argument(
        "--speed", type=float, default=600.0, help="simulated seconds per real second, per call"
    )
    args = parser.parse_args(argv)

    sandbox = AirflowSandbox([args.dags])
    try:
        sandbox.migrate()  # first, so that the time printed below is the DAG run's
        with FuseSimulator(speed=args.speed) as sim:
            # The first attempt is busy, the reminder gets through on the second.
            sim.script(PATIENT, "busy:1")
            print(f"Fuse simulator on {sim.url} at {args.speed:g}x speed; the patient's line is busy once.")
            print(f"Running `airflow dags test {DAG_ID}` (AIRFLOW_HOME={sandbox.home}) ...", flush=True)
            started = time.monotonic()
            result = sandbox.dags_test(
                DAG_ID, env={**sim.connection_env(), "FUSE_EXAMPLE_POLL_INTERVAL": "1"}, timeout=DAG_TIMEOUT
            )
            elapsed = time.monotonic() - started
            queued, polled = len(sim.requests("queue")), len(sim.requests("status"))
        log = sandbox.home / "dags-test.log"
        log.write_text(result.output)
        details = sandbox.xcom(DAG_ID, TASK_ID)
        if not result.ok or not details:
            print(f"\nDEMO FAILED: task states {dict(result.task_states)}; full log: {log}", file=sys.stderr)
            print(result.output[-3000:], file=sys.stderr)
            return 1
        print(
            f"\nTask {TASK_ID}: {result.task_states[TASK_ID]} in {elapsed:.1f} s (deferred to the triggerer)."
        )
        print("\n".join(summary(details)))
        print(f"\nFuse received {queued} queue request and {polled} status requests.")
        return callback_demo(sandbox, args.speed)
    finally:
        if "--keep" not in (argv or sys.argv):
            sandbox.cleanup()


def callback_demo(sandbox: AirflowSandbox, speed: float) -> int:
    """A call with ``result_url="airflow"``: its outcome arrives by callback, zero status requests."""
    (sandbox.dags_folder / f"{CALLBACK_DAG_ID}.py").write_text(CALLBACK_DAG)
    with FuseSimulator(speed=speed) as sim:
        connection = {
            "conn_type": "fuse",
            "host": sim.url,
            "login": sim.login,
            "password": sim.password,
            "extra": {"callback_secret": CALLBACK_SECRET},
        }
        env = {"AIRFLOW_CONN_FUSE_DEFAULT": json.dumps(connection)}
        print(
            '\nNow with result_url="airflow": starting `airflow api-server` (the plugin receives callbacks) ...'
        )
        with sandbox.api_server(env) as url:
            print(f"Running `airflow dags test {CALLBACK_DAG_ID}` with [api] base_url {url} ...", flush=True)
            started = time.monotonic()
            result = sandbox.dags_test(
                CALLBACK_DAG_ID, env={**env, "AIRFLOW__API__BASE_URL": url}, timeout=DAG_TIMEOUT
            )
            elapsed = time.monotonic() - started
            queued, polled = len(sim.requests("queue")), len(sim.requests("status"))
            delivered = [entry.status for entry in sim.callbacks]
    details = sandbox.xcom(CALLBACK_DAG_ID, TASK_ID)
    if not result.ok or not details:
        log = sandbox.home / "dags-test-callback.log"
        log.write_text(result.output)
        print(f"\nDEMO FAILED: task states {dict(result.task_states)}; full log: {log}", file=sys.stderr)
        print(result.output[-3000:], file=sys.stderr)
        return 1
    print(f"\nTask {TASK_ID}: {result.task_states[TASK_ID]} in {elapsed:.1f} s.")
    print("\n".join(summary(details)[:3]))
    print(
        f"\nFuse received {queued} queue request and {polled} status requests; it POSTed the outcome to "
        f"{url}/fuse/callbacks/*** (HTTP {', '.join(map(str, delivered)) or 'none'})."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
