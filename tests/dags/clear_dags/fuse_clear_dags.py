"""DAGs for the clear-versus-retry suite: `airflow dags test`, then `airflow tasks clear`, then the task again.

``fuse_clear_ended`` waits for its call (it completes); ``fuse_clear_pending`` queues a call that may
not start for days and returns at once, so the call is still in progress when the task is cleared;
its 40 retries a day apart need keys that outlive the default 30-day retention.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_provider_fuse.operators.fuse import QueueCallOperator

START = pendulum.datetime(2026, 1, 1, tz="UTC")

for dag_id, waits, retries in (("fuse_clear_ended", True, 1), ("fuse_clear_pending", False, 40)):
    with DAG(dag_id=dag_id, schedule=None, start_date=START, params={"start": ""}):
        QueueCallOperator(
            task_id="call",
            application_id=1001,
            deployment_id=2002,
            phone_number="+16175550160",
            start_timestamp="{{ params.start }}",
            wait_for_completion=waits,
            poll_interval=0.2,
            timeout=60,
            retries=retries,
            retry_delay=timedelta(days=1),
        )
