"""Two DAGs whose one task looks like a finished Fuse call (its XComs as QueueCallOperator pushes
them), for tests/stack/test_pages_access.py: no Fuse needed to ask for its page."""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, task

PAGE_DAGS = ("fuse_pages_open", "fuse_pages_secret")
CALL_ID = "page-4242"
NUMBER = "+16175550188"


@task(task_id="call")
def finished_call(ti: Any = None) -> dict[str, Any]:
    from airflow_provider_fuse.links import CALL_ID_XCOM_KEY
    from airflow_provider_fuse.models import CallDetails

    ti.xcom_push(key=CALL_ID_XCOM_KEY, value=CALL_ID)
    details = {
        "status": "completed",
        "phone_number": NUMBER,
        "attempts": "1",
        "max_attempts": "2",
        "duration": 42,
    }
    return dict(CallDetails.from_api(details, call_id=CALL_ID).to_dict())


for page_dag in PAGE_DAGS:
    with DAG(page_dag, schedule=None, is_paused_upon_creation=False, tags=["fuse-tests"]):
        finished_call()
