"""What the task view shows of a Fuse call: rendered variables as JSON (masked for an ``is_pci`` call),
the call status link, the docs.

The tasks take their operator's docstring as ``doc_md``, as a DAG author may, so the browser test
sees how it renders as Markdown (``cleandoc``: an indented docstring would render as a code block).
"""

from __future__ import annotations

import inspect

import pendulum
from airflow.sdk import DAG

from airflow_provider_fuse.operators.fuse import QueueCallOperator
from airflow_provider_fuse.sensors.fuse import FuseCallSensor

with DAG(
    dag_id="fuse_ui_task_view",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"name": "Ann Example", "appointment": "Monday at 10am", "card_hint": "4111-UI-PCI-0042"},
    doc_md=__doc__,
):
    queue_call = QueueCallOperator(
        task_id="queue_call",
        application_id=1001,
        deployment_id=2002,
        phone_number="+16175550123",
        variables={"name": "{{ params.name }}", "appointment": "{{ params.appointment }}", "run": "{{ ds }}"},
        wait_for_completion=False,
        doc_md=inspect.cleandoc(QueueCallOperator.__doc__ or ""),
    )
    wait_for_call = FuseCallSensor(
        task_id="wait_for_call",
        call_id="{{ ti.xcom_pull(task_ids='queue_call', key='call_id') }}",
        poke_interval=0.5,
        timeout=120,
        doc_md=inspect.cleandoc(FuseCallSensor.__doc__ or ""),
    )
    queue_call >> wait_for_call
    QueueCallOperator(
        task_id="queue_pci_call",
        application_id=1001,
        deployment_id=2002,
        phone_number="+16175550124",
        is_pci=True,
        variables={"card_hint": "{{ params.card_hint }}"},
        wait_for_completion=False,
    )
