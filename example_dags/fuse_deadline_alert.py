"""Phone the on-call engineer when the nightly load is late: not finished 4 hours after its run was queued.

A Deadline Alert (Airflow 3.1+) runs its callback in the triggerer when the deadline passes and the
run has not ended: ``AsyncCallback(FuseCallNotifier, kwargs=...)`` queues the call from there, once
per missed deadline, and never fails. The callback's context is the DAG run and the deadline, so
templates read the run as the REST API shows it (``dag_run.dag_id``, ``dag_run.dag_run_id``,
``dag_run.queued_at``...) and ``deadline.deadline_time``.

``FUSE_EXAMPLE_LATE_AFTER`` and ``FUSE_EXAMPLE_LOAD_SECONDS`` only let the test suite make a run late
in seconds.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, task

try:
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference
except ImportError:  # Airflow 3.1 keeps them here
    from airflow.sdk.definitions.deadline import AsyncCallback, DeadlineAlert, DeadlineReference

from airflow_provider_fuse.notifications.fuse import FuseCallNotifier

LATE_AFTER = timedelta(seconds=float(os.environ.get("FUSE_EXAMPLE_LATE_AFTER", 4 * 3600)))
LOAD_SECONDS = float(os.environ.get("FUSE_EXAMPLE_LOAD_SECONDS", "1"))

with DAG(
    dag_id="fuse_deadline_alert",
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=LATE_AFTER,
        callback=AsyncCallback(
            FuseCallNotifier,
            kwargs={
                "application_id": 1001,
                "deployment_id": 2003,
                "phone_number": "+16175550199",
                "caller_id": "+18009957586",
                "variables": {
                    "dag": "{{ dag_run.dag_id }}",
                    "run": "{{ dag_run.dag_run_id }}",
                    "deadline": "{{ deadline.deadline_time }}",
                },
                "max_attempts": 3,
                "reattempt_wait": 120,
            },
        ),
    ),
    tags=["fuse", "example"],
    doc_md=__doc__,
):

    @task
    def load_warehouse() -> None:
        time.sleep(LOAD_SECONDS)  # stands in for the nightly load

    load_warehouse()
