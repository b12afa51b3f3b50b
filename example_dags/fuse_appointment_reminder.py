"""Phone a patient the day before an appointment, and fail the task if nobody answers.

The call may ring from the run's start for four hours, up to three times ten minutes apart; the
task waits in the triggerer (deferrable), so no worker slot is held while the phone rings. A
retried task re-attaches to its call instead of ringing the patient again.

Trigger with your own values: ``airflow dags trigger fuse_appointment_reminder -c
'{"phone": "+16175550123", "name": "Ann", "appointment": "Monday at 10am"}'``.

Calling hours are the patient's local time, judged from the number's zone:
``-c '{"calling_hours": "09:00-20:00"}'`` holds a 7 a.m. run until 09:00 in Boston and ends the
dialing window at 20:00 there. The default leaves them off, so that ``make demo`` calls at once at
any time of day.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_provider_fuse.operators.fuse import QueueCallOperator

# Production polls every 30 s; `make demo` sets 1 s because its simulated Fuse runs 600x faster.
POLL_INTERVAL = float(os.environ.get("FUSE_EXAMPLE_POLL_INTERVAL", "30"))

with DAG(
    dag_id="fuse_appointment_reminder",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "phone": "+16175550123",
        "name": "John Doe",
        "appointment": "Monday at 10am",
        "caller_id": "+18009957586",
        "calling_hours": "",  # e.g. "09:00-20:00", the patient's local time; empty = any time
        "timezone": "",  # empty: the zone of the patient's number
        "application_id": 1001,
        "deployment_id": 2002,
    },
    tags=["fuse", "example"],
    doc_md=__doc__,
):
    QueueCallOperator(
        task_id="remind_patient",
        application_id="{{ params.application_id }}",
        deployment_id="{{ params.deployment_id }}",
        phone_number="{{ params.phone }}",
        caller_id="{{ params.caller_id }}",
        start_timestamp="{{ dag_run.run_after }}",
        end_timestamp="{{ dag_run.run_after + macros.timedelta(hours=4) }}",
        max_attempts=3,
        reattempt_wait=timedelta(minutes=10),
        variables={"name": "{{ params.name }}", "appointment": "{{ params.appointment }}"},
        calling_hours="{{ params.calling_hours }}",
        timezone="{{ params.timezone }}",
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        timeout=timedelta(hours=5),
        retries=2,
        retry_delay=timedelta(seconds=5),
    )
