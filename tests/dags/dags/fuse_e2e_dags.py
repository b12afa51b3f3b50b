"""DAGs for the end-to-end suite: each runs with `airflow dags test` against the FuseSimulator.

The phone number comes from the run's conf, so each test scripts the simulated callee's outcome.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_fuse.operators.fuse import QueueCallOperator
from airflow_provider_fuse.sensors.fuse import FuseCallSensor

DEFAULTS: dict[str, Any] = {"phone": "+16175550100", "start": "", "max_attempts": 1, "reattempt_wait": 60}
START = pendulum.datetime(2026, 1, 1, tz="UTC")


class CrashAfterQueueing(QueueCallOperator):
    """Dies after queueing on its first try, as a worker killed mid-task would."""

    def execute(self, context: Any) -> Any:
        self._first_try = context["ti"].try_number == 1
        return super().execute(context)

    def _wait(self, hook: Any, call_id: str) -> Any:
        if self._first_try:
            raise RuntimeError(f"simulated crash after queueing call {call_id}")
        return super()._wait(hook, call_id)


def call_task(cls: type[QueueCallOperator] = QueueCallOperator, **kwargs: Any) -> QueueCallOperator:
    return cls(
        task_id="call",
        application_id=1001,
        deployment_id=2002,
        phone_number="{{ params.phone }}",
        start_timestamp="{{ params.start }}",
        max_attempts="{{ params.max_attempts }}",
        reattempt_wait="{{ params.reattempt_wait }}",
        variables={"run": "{{ run_id }}"},
        poll_interval=0.2,
        **kwargs,
    )


for dag_id, options in {
    "fuse_e2e_sync": {"deferrable": False, "timeout": 30},
    "fuse_e2e_deferred": {"deferrable": True, "timeout": 30},
    "fuse_e2e_short_deadline": {"deferrable": True, "timeout": 2},
}.items():
    with DAG(dag_id=dag_id, schedule=None, start_date=START, params=DEFAULTS):
        call_task(**options)

with DAG(dag_id="fuse_e2e_crash_retry", schedule=None, start_date=START, params=DEFAULTS):
    call_task(CrashAfterQueueing, deferrable=True, timeout=30, retries=1, retry_delay=0)

with DAG(dag_id="fuse_e2e_sensor_modes", schedule=None, start_date=START, params=DEFAULTS):
    queued = call_task(wait_for_completion=False)
    call_id = "{{ ti.xcom_pull(task_ids='call', key='call_id') }}"
    for mode, deferrable in (("poke", False), ("reschedule", False), ("poke", True)):
        suffix = "deferrable" if deferrable else mode
        queued >> FuseCallSensor(
            task_id=f"wait_{suffix}",
            call_id=call_id,
            mode=mode,
            deferrable=deferrable,
            poke_interval=1,
            timeout=60,
        )

with DAG(dag_id="fuse_e2e_mapped", schedule=None, start_date=START):

    @task
    def numbers() -> list[str]:
        return ["+16175550111", "+16175550112", "tel:+16175550113;postd=12#"]

    QueueCallOperator.partial(
        task_id="call",
        application_id=1001,
        deployment_id=2002,
        deferrable=True,
        poll_interval=0.2,
        timeout=30,
    ).expand(phone_number=numbers())
