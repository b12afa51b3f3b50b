"""DAGs of the cluster suite (tests/cluster).

- ``fuse_cluster_call``: one call waited for in the worker, on Celery queue ``crash_call`` (only
  ``worker-1`` takes it, so that the suite knows which worker to kill).
- ``fuse_cluster_campaign_crash``: six calls in three bulk uploads of two, on queue ``crash_campaign``
  (only ``worker-2``), with ``reupload_unanswered=True``.
- ``fuse_cluster_waits``: 200 mapped single calls, each deferred to the triggerer (connection
  ``fuse_waits``): the waits a triggerer holds when it is killed.
- ``fuse_cluster_campaign``: one campaign task whose rows are the CSV file named by the run's conf
  (``calls_file``, 10,000 rows in the suite), tracked by one trigger (connection ``fuse_campaign``).
- ``fuse_cluster_steady``: three calls waited for in the worker and three deferred, on the connection
  the run's conf names (``conn``): the work in flight while a scheduler, PostgreSQL or Redis goes down.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_provider_fuse.operators.fuse import QueueCallOperator, QueueCallsOperator

START = pendulum.datetime(2026, 1, 1, tz="UTC")
WAITS = 200
WAIT_NUMBERS = [f"+1617555{n:04d}" for n in range(3000, 3000 + WAITS)]
#: Three waited for in workers (a worker, 4 slots, keeps one free for its crash scenario's task), and
#: three other callees deferred: each number is called once per run, so the ledger tells who queued it.
STEADY_NUMBERS = {
    "in_worker": [f"+1617555{n:04d}" for n in range(4000, 4003)],
    "deferred": [f"+1617555{n:04d}" for n in range(4100, 4103)],
}
CALL_NUMBER = "+16175550150"
CAMPAIGN_ROWS = [{"phone_number": f"+1617555{n:04d}", "variables": {"row": str(n)}} for n in range(201, 207)]
#: Two attempts a minute apart for every call, so that a callee scripted ``busy:1`` answers the second.
ATTEMPTS = {"max_attempts": 2, "reattempt_wait": 60}
#: Every task may be retried; a retry resumes its call (that is what the suite checks).
RETRIES = {"retries": 2, "retry_delay": timedelta(seconds=1)}

with DAG(
    dag_id="fuse_cluster_call", schedule=None, start_date=START, catchup=False, tags=["fuse-cluster-tests"]
):
    QueueCallOperator(
        task_id="call",
        application_id=1001,
        deployment_id=2002,
        phone_number=CALL_NUMBER,
        fuse_conn_id="fuse_crash_call",
        deferrable=False,
        poll_interval=2,
        timeout=1800,
        queue="crash_call",
        **RETRIES,
    )

with DAG(
    dag_id="fuse_cluster_campaign_crash",
    schedule=None,
    start_date=START,
    catchup=False,
    tags=["fuse-cluster-tests"],
):
    QueueCallsOperator(
        task_id="call",
        application_id=1001,
        deployment_id=2002,
        calls=CAMPAIGN_ROWS,
        chunk_size=2,
        reupload_unanswered=True,
        fuse_conn_id="fuse_crash_campaign",
        deferrable=True,
        poll_interval=2,
        timeout=1800,
        queue="crash_campaign",
        **RETRIES,
    )

with DAG(
    dag_id="fuse_cluster_waits",
    schedule=None,
    start_date=START,
    catchup=False,
    max_active_tasks=WAITS,
    tags=["fuse-cluster-tests"],
):
    QueueCallOperator.partial(
        task_id="call",
        application_id=1001,
        deployment_id=2002,
        fuse_conn_id="fuse_waits",
        deferrable=True,
        poll_interval=30,  # each trigger polls at once when it starts: the takeover is seen at once
        timeout=1800,
        **ATTEMPTS,
        **RETRIES,
    ).expand(phone_number=WAIT_NUMBERS)

with DAG(
    dag_id="fuse_cluster_campaign",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"calls_file": ""},
    tags=["fuse-cluster-tests"],
):
    QueueCallsOperator(
        task_id="call",
        application_id=1001,
        deployment_id=2002,
        calls="{{ params.calls_file }}",
        chunk_size=5000,
        fuse_conn_id="fuse_campaign",
        deferrable=True,
        poll_interval=2,
        max_requests_per_second=300,  # a loopback simulator: the 20-a-second cap for Fuse does not apply
        timeout=1800,
        **ATTEMPTS,
        **RETRIES,
    )

with DAG(
    dag_id="fuse_cluster_steady",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"conn": "fuse_default"},
    tags=["fuse-cluster-tests"],
):
    for task_id, numbers in STEADY_NUMBERS.items():
        QueueCallOperator.partial(
            task_id=task_id,
            application_id=1001,
            deployment_id=2002,
            fuse_conn_id="{{ params.conn }}",
            deferrable=task_id == "deferred",
            poll_interval=2,
            timeout=1800,
            **ATTEMPTS,
            **RETRIES,
        ).expand(phone_number=numbers)
