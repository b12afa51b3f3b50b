"""The extra links of call and campaign tasks: the task's page, served by the ``fuse`` plugin.

The page (``{[api] base_url}/fuse/tasks/<dag_id>/<run_id>/<task_id>/<map_index>``, see
docs/pages.md) is behind Airflow's own login and shows masked values only: the browser never needs
the connection's developer key, as it did for Fuse's own status resource. Import-light like the
operators that declare the links: Airflow asks for a link in the worker as the task finishes or defers
(it then stores the URL as an XCom that the UI shows), never while a DAG file is parsed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperatorLink

from airflow_provider_fuse.plugins import task_page_path

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

#: XCom key under which QueueCallOperator publishes the id of the call it queued.
CALL_ID_XCOM_KEY = "call_id"


def task_page_url(ti_key: TaskInstanceKey) -> str:
    """The page of ``ti_key``: absolute from ``[api] base_url``, else relative (the UI resolves it
    against its own base URL, which is the API server's)."""
    from airflow.providers.common.compat.sdk import conf

    path = task_page_path(ti_key.dag_id, ti_key.run_id, ti_key.task_id, ti_key.map_index)
    base_url = conf.get("api", "base_url", fallback=None)
    return f"{base_url.rstrip('/')}/{path}" if base_url else path


class FuseCallLink(BaseOperatorLink):
    """The call page of the task: masked number, status, attempts, duration and timeline.

    Shown once the task has a call id: the sensor's ``call_id``, or the operator's ``call_id`` XCom
    (a task that failed before queueing shows no link).
    """

    name = "Fuse call status"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        call_id = getattr(operator, "call_id", None)
        if not call_id:
            from airflow.sdk.execution_time.xcom import XCom

            call_id = XCom.get_value(ti_key=ti_key, key=CALL_ID_XCOM_KEY)
        return task_page_url(ti_key) if call_id else ""


class FuseCampaignLink(BaseOperatorLink):
    """The campaign page of the task: totals by status, calls ended over time, rows not reached."""

    name = "Fuse campaign"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return task_page_url(ti_key)
