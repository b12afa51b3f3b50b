"""DAG of the hygiene test: PCI calls whose variables hold markers that must never be logged.

One PCI call completes (deferred to the triggerer), one is rejected (FuseCallFailed in the worker)
and phones the on-call number through FuseCallNotifier; the post-dial digits stand in for a PIN.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_fuse.notifications.fuse import FuseCallNotifier
from airflow_provider_fuse.operators.fuse import QueueCallOperator

PCI_NUMBER = "+16175550166"
REJECTING_NUMBER = "+16175550177"
ON_CALL_NUMBER = "+16175550188"
CALLER_ID = "+18009957586"
POST_DIAL_PIN = "90817263545#"  # long enough never to match a timestamp by chance
PCI_NAME = "card_hint_5512"
PCI_VALUE = "PCI-MARKER-7781"

with DAG(
    dag_id="fuse_hygiene_pci",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["fuse-system-tests"],
):
    QueueCallOperator(
        task_id="pci_call",
        application_id=1001,
        deployment_id=2002,
        phone_number=PCI_NUMBER,
        caller_id=CALLER_ID,
        post_dial=POST_DIAL_PIN,
        is_pci=True,
        variables={PCI_NAME: PCI_VALUE, "amount_due": "{{ 'PCI-MARKER-' ~ (6000 + 42) }}"},
        deferrable=True,
        poll_interval=0.5,
        timeout=60,
    )
    QueueCallOperator(
        task_id="pci_rejected",
        application_id=1001,
        deployment_id=2002,
        phone_number=f"tel:{REJECTING_NUMBER};ani={CALLER_ID}",
        is_pci=1,
        variables={PCI_NAME: PCI_VALUE},
        deferrable=False,
        poll_interval=0.2,
        timeout=60,
        on_failure_callback=FuseCallNotifier(
            application_id=1001,
            deployment_id=2002,
            phone_number=ON_CALL_NUMBER,
            caller_id=CALLER_ID,
            variables={"dag": "{{ dag.dag_id }}", "task": "{{ ti.task_id }}"},
        ),
    )
