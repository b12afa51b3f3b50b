"""Queue a call without waiting, do other work, then wait for it with a sensor.

``wait_for_completion=False`` returns at once with the call id (also pushed to XCom as
``call_id``); the sensor, in ``reschedule`` mode, frees its worker slot between pokes.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_fuse.operators.fuse import QueueCallOperator
from airflow_provider_fuse.sensors.fuse import FuseCallSensor

POKE_INTERVAL = float(os.environ.get("FUSE_EXAMPLE_POLL_INTERVAL", "60"))

with DAG(
    dag_id="fuse_call_then_sensor",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"phone": "+16175550124", "application_id": 1001, "deployment_id": 2002},
    tags=["fuse", "example"],
    doc_md=__doc__,
):
    queue_call = QueueCallOperator(
        task_id="queue_call",
        application_id="{{ params.application_id }}",
        deployment_id="{{ params.deployment_id }}",
        phone_number="{{ params.phone }}",
        variables={"reason": "survey"},
        wait_for_completion=False,
    )
    wait_for_call = FuseCallSensor(
        task_id="wait_for_call",
        call_id="{{ ti.xcom_pull(task_ids='queue_call', key='call_id') }}",
        mode="reschedule",
        poke_interval=POKE_INTERVAL,
        timeout=3600,
    )
    queue_call >> wait_for_call
