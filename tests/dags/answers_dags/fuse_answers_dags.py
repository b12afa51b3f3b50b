"""DAGs for the end-to-end runs of Fuse's undocumented answers (tests/dags/test_answers_end_to_end.py).

Variables formats, a bulk answer without ids (with a retried task), a queue answer without id, XML.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG

from airflow_provider_fuse.operators.fuse import QueueCallOperator, QueueCallsOperator
from airflow_provider_fuse.protocol import VARIABLES_FORMATS

START = pendulum.datetime(2026, 1, 1, tz="UTC")
CAMPAIGN = [
    {"phone_number": "+16175550161", "variables": {"name": "Ann"}},
    {"phone_number": "+16175550162", "variables": {"name": "Bob"}},
    {"phone_number": "+16175550163", "variables": {"name": "Carla"}},
]


class CrashAfterUploading(QueueCallsOperator):
    """Dies after its uploads on the first try, as a worker killed mid-task would."""

    def _resume_or_queue(self, hook: Any, plan: Any, memory: Any) -> Any:
        records = super()._resume_or_queue(hook, plan, memory)
        if self._first_try:
            raise RuntimeError("simulated crash after uploading")
        return records

    def execute(self, context: Any) -> Any:
        self._first_try = context["ti"].try_number == 1
        return super().execute(context)


def call(task_id: str = "call", fuse_conn_id: str = "fuse_default") -> QueueCallOperator:
    return QueueCallOperator(
        task_id=task_id,
        application_id=1001,
        deployment_id=2002,
        phone_number="+16175550160",
        variables={"name": "Ann Lee", "slot": "Tue 9:00 & 9:30", "run": "{{ run_id }}"},
        poll_interval=0.2,
        timeout=60,
        fuse_conn_id=fuse_conn_id,
    )


with DAG(dag_id="fuse_answers_single", schedule=None, start_date=START):
    call()

with DAG(dag_id="fuse_answers_formats", schedule=None, start_date=START):
    for variables_format in VARIABLES_FORMATS:  # one task each, through connection fuse_<format>
        call(f"call_{variables_format}", f"fuse_{variables_format}")

with DAG(dag_id="fuse_answers_campaign_retry", schedule=None, start_date=START):
    CrashAfterUploading(
        task_id="campaign",
        application_id=1001,
        deployment_id=2002,
        calls=CAMPAIGN,
        chunk_size=2,
        poll_interval=0.2,
        timeout=60,
        retries=1,
        retry_delay=0,
    )
