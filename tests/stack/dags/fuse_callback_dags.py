"""DAGs of the callback suite (tests/stack/test_callbacks_stack.py): a call and a campaign whose
``result_url`` is Airflow's, and a DAG scheduled on their deployment's asset.

Both talk to the simulator behind connection ``fuse_callbacks`` (its ``callback_secret`` extra signs
the callback addresses). ``poll_interval`` is 1 s, so the triggers read the callbacks record every
second; they send no status request before the dialing window plus the 900 s grace has passed.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_fuse.callbacks import deployment_asset
from airflow_provider_fuse.operators.fuse import QueueCallOperator, QueueCallsOperator

START = pendulum.datetime(2026, 1, 1, tz="UTC")
APPLICATION_ID, DEPLOYMENT_ID = 1001, 2002
CAMPAIGN_ROWS = [{"phone_number": f"+1617555{n:04d}"} for n in range(301, 304)]
COMMON: dict[str, Any] = {
    "application_id": APPLICATION_ID,
    "deployment_id": DEPLOYMENT_ID,
    "result_url": "airflow",
    "fuse_conn_id": "fuse_callbacks",
    "deferrable": True,
    "poll_interval": 1,
    "timeout": 600,
}

with DAG(dag_id="fuse_cb_call", schedule=None, start_date=START, catchup=False, params={"start": ""}):
    QueueCallOperator(
        task_id="call", phone_number="+16175550300", start_timestamp="{{ params.start }}", **COMMON
    )

with DAG(dag_id="fuse_cb_campaign", schedule=None, start_date=START, catchup=False):
    QueueCallsOperator(task_id="call", calls=CAMPAIGN_ROWS, chunk_size=2, **COMMON)

# Asset events are not one run each: those arriving before the scheduler creates a run share it. So
# the DAG handles every event of its run (triggering_asset_events), and the suite checks that every
# callback's event is handled by exactly one run.
with DAG(
    dag_id="fuse_cb_outcomes",
    schedule=[deployment_asset(APPLICATION_ID, DEPLOYMENT_ID)],
    start_date=START,
    catchup=False,
):

    @task
    def follow_up(triggering_asset_events: Any = None) -> list[str]:
        return [
            f"{event.extra['call']['phone_number']} {event.extra['call']['status']}"
            for events in triggering_asset_events.values()
            for event in events
        ]

    follow_up()
