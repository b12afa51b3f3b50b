"""Remind tomorrow's patients in one campaign, then report who was reached and who was not.

``fuse_reminder_campaign.csv`` beside this file lists the appointments: a ``phone_number`` column,
a ``caller_id`` column, and ``name``/``appointment`` columns that reach the Fuse application as
variables. One task validates every row (a bad row fails it before any call), queues them all
through Fuse's bulk upload and waits for every call from the triggerer, holding no worker slot.
A retried task never uploads the same rows twice. A downstream task reads the result with
``CampaignResult`` and lists who was not reached, e.g. to send them a text message instead.

Calling hours are each patient's own local time, for example::

    airflow dags trigger fuse_reminder_campaign -c '{"calling_hours": "09:00-20:00"}'

calls a patient in Boston from 09:00 Eastern and one in San Francisco from 09:00 Pacific, three
hours later: numbers in different time zones go out in one upload per zone, and each call stops
when its patient's hours close. Add ``"timezone": "America/New_York"`` to judge every number by
one clock instead. The demo leaves calling hours off so that it runs at once at any time of day.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_fuse.operators.fuse import QueueCallsOperator

APPOINTMENTS = Path(__file__).with_name("fuse_reminder_campaign.csv")
# Production polls every 60 s; the demo and tests set 0.5 s because their simulated Fuse runs 600x faster.
POLL_INTERVAL = float(os.environ.get("FUSE_EXAMPLE_POLL_INTERVAL", "60"))

with DAG(
    dag_id="fuse_reminder_campaign",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "application_id": 1001,
        "deployment_id": 2002,
        "calling_hours": "",  # off for the demo; e.g. "09:00-20:00", the patient's local time
        "timezone": "",  # empty: each patient's own zone, from the number
        "window_hours": 8,
        "max_attempts": 2,
        "reattempt_wait": 600,
    },
    tags=["fuse", "example"],
    doc_md=__doc__,
):
    call_patients = QueueCallsOperator(
        task_id="call_patients",
        application_id="{{ params.application_id }}",
        deployment_id="{{ params.deployment_id }}",
        calls=str(APPOINTMENTS),
        calling_hours="{{ params.calling_hours }}",
        timezone="{{ params.timezone }}",
        end_timestamp="{{ dag_run.run_after + macros.timedelta(hours=params.window_hours) }}",
        max_attempts="{{ params.max_attempts }}",
        reattempt_wait="{{ params.reattempt_wait }}",
        min_completed_ratio=0.5,  # fail the task (and alert) when fewer than half were reached
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        timeout=timedelta(hours=26),
        retries=2,
        retry_delay=timedelta(seconds=5),
    )

    @task
    def report(result: dict[str, Any]) -> dict[str, list[str]]:
        """Who was reached and who was not, by name: the result's row numbers point into the CSV."""
        from airflow_provider_fuse.campaign import CampaignResult, rows_from_csv

        campaign = CampaignResult.from_xcom(result)
        patients = rows_from_csv(APPOINTMENTS.read_text(encoding="utf-8"))

        def name(row: int) -> str:
            return str(patients[row - 1]["variables"]["name"])

        summary = {
            "reached": [name(call.row) for call in campaign.reached],
            "not_reached": [f"{name(call.row)} ({call.status})" for call in campaign.not_reached],
        }
        print(f"Campaign: {campaign.describe()}.")
        print(f"Reached: {', '.join(summary['reached']) or 'nobody'}.")
        print(f"Not reached: {', '.join(summary['not_reached']) or 'nobody'}.")
        return summary

    report(call_patients.output)
