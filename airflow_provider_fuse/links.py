"""The "Fuse call status" extra link on a task that placed or waited for a call.

Import-light like the operators that declare it: the connection and the call id are read only when
Airflow asks for the link, which Airflow 3 does in the worker as the task finishes or defers (it then
stores the URL as an XCom that the UI shows), never while a DAG file is parsed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperatorLink

from airflow_provider_fuse import DEFAULT_CONN_ID

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

#: XCom key under which QueueCallOperator publishes the id of the call it queued.
CALL_ID_XCOM_KEY = "call_id"


class FuseCallLink(BaseOperatorLink):
    """Fuse's status resource of the task's call, ``{base_url}/outbound/{call_id}``.

    It is the one per-call address that Fuse documents: the call's status, attempts and events as
    JSON, behind the same e-mail and developer key as the connection (the URL carries neither).
    The call id comes from the sensor's ``call_id`` or from the operator's ``call_id`` XCom; a task
    that never got a call id shows no link.
    """

    name = "Fuse call status"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        call_id = getattr(operator, "call_id", None)
        if not call_id:
            from airflow.sdk.execution_time.xcom import XCom

            call_id = XCom.get_value(ti_key=ti_key, key=CALL_ID_XCOM_KEY)
        if not call_id:
            return ""
        from airflow.sdk import BaseHook

        from airflow_provider_fuse.connection import FuseSettings
        from airflow_provider_fuse.exceptions import FuseError

        conn = BaseHook.get_connection(getattr(operator, "fuse_conn_id", DEFAULT_CONN_ID))
        try:
            return FuseSettings.from_connection(conn).status_url(call_id)
        except FuseError:  # an unusable connection or call id: the task failed on it and said why
            return ""
