"""DAGs of the multi-process suite: one per scenario, each talking to its own simulator.

Scenario ``x`` is DAG ``fuse_sys_x`` with one task ``call`` on connection ``fuse_x`` (defined by the
suite through ``AIRFLOW_CONN_FUSE_X``), so that scenarios run side by side without sharing faults or
ledgers. The run's conf may set ``start`` (Unix seconds on the simulator's clock) to keep a call
pending for a while, or ``max_attempts``/``reattempt_wait`` so that a callee scripted ``busy:1``
answers the second attempt a known time after queueing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_fuse.notifications.fuse import FuseCallNotifier
from airflow_provider_fuse.operators.fuse import QueueCallOperator, QueueCallsOperator

START = pendulum.datetime(2026, 1, 1, tz="UTC")
#: Operator options per scenario (the faults are injected by the suite, not here).
SCENARIOS: dict[str, dict[str, Any]] = {
    "happy": {"deferrable": True, "timeout": 90},
    "queue_429": {"deferrable": True, "timeout": 90},
    "queue_503": {"deferrable": True, "timeout": 90, "retries": 1},
    "queue_slow": {"deferrable": False, "timeout": 90, "retries": 1},
    "queue_drop": {"deferrable": True, "timeout": 90, "retries": 1},
    "queue_malformed": {"deferrable": False, "timeout": 90, "retries": 1},
    "status_lag": {"deferrable": True, "timeout": 180},
    "unreachable_queue": {"deferrable": True, "timeout": 90, "retries": 2},
    "unreachable_wait": {"deferrable": True, "timeout": 90},
    "deadline_deferred": {"deferrable": True, "timeout": 8},
    "deadline_worker": {"deferrable": False, "timeout": 8},
    "crash_task": {"deferrable": False, "timeout": 120, "retries": 1},
    "crash_worker": {"deferrable": False, "timeout": 120, "retries": 1},
    "crash_triggerer": {"deferrable": True, "timeout": 120},
    "cli": {"deferrable": True, "timeout": 90},  # against the package's simulator CLI, not the host
}

for name, options in SCENARIOS.items():
    with DAG(
        dag_id=f"fuse_sys_{name}",
        schedule=None,
        start_date=START,
        catchup=False,
        params={"phone": "+16175550150", "start": "", "max_attempts": 1, "reattempt_wait": 60},
        tags=["fuse-system-tests"],
    ):
        QueueCallOperator(
            task_id="call",
            application_id=1001,
            deployment_id=2002,
            phone_number="{{ params.phone }}",
            start_timestamp="{{ params.start }}",
            max_attempts="{{ params.max_attempts }}",
            reattempt_wait="{{ params.reattempt_wait }}",
            variables={"scenario": name},
            fuse_conn_id=f"fuse_{name}",
            poll_interval=1,
            retry_delay=timedelta(seconds=1),
            **options,
        )

# Campaigns: six calls in three bulk uploads of two; the suite kills the task between uploads.
CAMPAIGN_ROWS = [{"phone_number": f"+1617555{n:04d}", "variables": {"row": str(n)}} for n in range(201, 207)]
CAMPAIGNS = {"campaign_crash": False, "campaign_crash_reupload": True}

for name, reupload in CAMPAIGNS.items():
    with DAG(
        dag_id=f"fuse_sys_{name}",
        schedule=None,
        start_date=START,
        catchup=False,
        tags=["fuse-system-tests"],
    ):
        QueueCallsOperator(
            task_id="call",
            application_id=1001,
            deployment_id=2002,
            calls=CAMPAIGN_ROWS,
            chunk_size=2,
            reupload_unanswered=reupload,
            fuse_conn_id=f"fuse_{name}",
            deferrable=True,
            poll_interval=1,
            timeout=120,
            retries=1,
            retry_delay=timedelta(seconds=1),
        )

# A failure callback run twice for one failure: by the task runner, whose whole worker the suite then
# kills (so the failure is never reported), and, after the heartbeat timeout, by the dag-processor.
NOTIFIERS = ["notifier_heartbeat"]


def hold_in_the_worker(context: Any) -> None:
    """After the notifier: keep the task runner alive until the suite kills it; a no-op elsewhere."""
    import time

    import setproctitle

    if setproctitle.getproctitle().startswith("airflow worker"):
        time.sleep(600)


for name in NOTIFIERS:
    with DAG(
        dag_id=f"fuse_sys_{name}", schedule=None, start_date=START, catchup=False, tags=["fuse-system-tests"]
    ):
        page = FuseCallNotifier(
            application_id=1001,
            deployment_id=2002,
            phone_number="+16175550150",
            variables={"task": "{{ ti.task_id }}", "try": "{{ ti.try_number }}"},
            fuse_conn_id=f"fuse_{name}",
        )

        @task(task_id="call", retries=0, on_failure_callback=[page, hold_in_the_worker])
        def fail() -> None:
            raise RuntimeError("the nightly load failed")

        fail()
