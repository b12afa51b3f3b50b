"""Phone the on-call engineer when a task fails, saying which DAG, task and error.

``FuseCallNotifier`` queues the call from the failure callback and returns at once; if Fuse cannot
be reached the callback logs why and the task's own failure stays what you see. One failure gives
one call, even when Airflow runs the callback twice. Calling hours are not applied: an on-call page
at 3 a.m. is the point.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_fuse.notifications.fuse import FuseCallNotifier

page_on_call = FuseCallNotifier(
    application_id="{{ params.application_id }}",
    deployment_id="{{ params.deployment_id }}",
    phone_number="{{ params.on_call }}",
    caller_id="+18009957586",
    variables={
        "dag": "{{ dag.dag_id }}",
        "task": "{{ ti.task_id }}",
        "run": "{{ run_id }}",
        "error": "{{ (exception | string).splitlines()[0] if exception is defined and exception else 'unknown' }}",
    },
    max_attempts=3,
    reattempt_wait=120,
)

with DAG(
    dag_id="fuse_on_failure_call",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"on_call": "+16175550199", "application_id": 1001, "deployment_id": 2003},
    default_args={"on_failure_callback": page_on_call},
    tags=["fuse", "example"],
    doc_md=__doc__,
):

    @task(retries=0)
    def load_warehouse() -> None:
        raise RuntimeError("warehouse load failed: disk full")

    load_warehouse()
