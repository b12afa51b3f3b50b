"""A sensor that times out in each mode, failing or (``soft_fail``) skipped; run with `airflow dags test`.

The call is queued to start days from now (the run's ``start`` conf), so no sensor ever sees it end.
Each sensor has retries left: a timed-out sensor must not use them.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_fuse.operators.fuse import QueueCallOperator
from airflow_provider_fuse.sensors.fuse import FuseCallSensor

MODES = {"poke": ("poke", False), "reschedule": ("reschedule", False), "deferrable": ("poke", True)}

with DAG(
    dag_id="fuse_e2e_sensor_timeouts",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    params={"start": ""},
):
    queued = QueueCallOperator(
        task_id="call",
        application_id=1001,
        deployment_id=2002,
        phone_number="+16175550100",
        start_timestamp="{{ params.start }}",
        wait_for_completion=False,
    )
    for name, (mode, deferrable) in MODES.items():
        for soft_fail in (False, True):
            queued >> FuseCallSensor(
                task_id=f"{name}_{'skips' if soft_fail else 'fails'}",
                call_id="{{ ti.xcom_pull(task_ids='call', key='call_id') }}",
                mode=mode,
                deferrable=deferrable,
                soft_fail=soft_fail,
                poke_interval=0.5,
                timeout=2,
                retries=2,
                retry_delay=0,
            )
