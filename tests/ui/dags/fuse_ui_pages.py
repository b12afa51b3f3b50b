"""A call and a small campaign for the call and campaign pages (tests/ui/test_pages.py).

The browser test scripts the simulator so that the call is busy once then answered, and a few of the
campaign's rows are never reached; the pages then have attempts, a timeline and rows not reached.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_fuse.operators.fuse import QueueCallOperator, QueueCallsOperator

CALL_NUMBER = "+16175550140"
#: The campaign's numbers: +1617555015x, x = 0..11.
CAMPAIGN_NUMBERS = [f"+161755501{50 + n}" for n in range(12)]

with DAG(
    dag_id="fuse_ui_pages",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
):
    QueueCallOperator(
        task_id="call",
        application_id=1001,
        deployment_id=2002,
        fuse_conn_id="fuse_pages",
        phone_number=CALL_NUMBER,
        max_attempts=2,
        reattempt_wait=60,
        poll_interval=1,
    )
    QueueCallsOperator(
        task_id="campaign",
        application_id=1001,
        deployment_id=2002,
        fuse_conn_id="fuse_pages",
        calls=[
            {"phone_number": number, "variables": {"name": f"Patient {n}"}}
            for n, number in enumerate(CAMPAIGN_NUMBERS)
        ],
        poll_interval=1,
    )
