"""``GET /fuse/tasks/{dag_id}/{run_id}/{task_id}/{map_index}``: the page of a call or campaign task.

Behind Airflow's own login and authorization, like the REST API's task instance routes: no token
gives 401, a user who may not read that DAG's task instances gets 403 (the auth manager decides,
through ``requires_access_dag``), before anything is read. ``map_index`` is ``-1`` for a task that is
not mapped (Airflow's UI leaves ``{MAP_INDEX}`` unfilled in the Fuse tab of such a task: the same). The page is read from the metadata database in the API server (the task instance and its
XComs) and never holds a secret: the values were masked when the tasks pushed them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import requires_access_dag
from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse

from airflow_provider_fuse.plugins import TASK_PAGE_ROUTE, UNFILLED_MAP_INDEX
from airflow_provider_fuse.plugins.page_data import TaskRef, build_view
from airflow_provider_fuse.plugins.page_html import SECURITY_HEADERS, missing_page, render

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

router = APIRouter()

#: XComs a page never needs: per-upload call ids and rows (large), and callback markers (many).
_UNREAD_PREFIXES = ("campaign_chunk_", "fuse_callback_seen_")


@router.get(
    TASK_PAGE_ROUTE,
    response_class=HTMLResponse,
    dependencies=[Depends(requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE))],
)
def task_page(dag_id: str, run_id: str, task_id: str, map_index: str, session: SessionDep) -> HTMLResponse:
    """The call page or the campaign page of one task instance (404 when it does not exist)."""
    index = parse_map_index(map_index)
    task = None if index is None else _task_instance(session, dag_id, run_id, task_id, index)
    if task is None:
        html = missing_page(dag_id, run_id, task_id, map_index)
        return HTMLResponse(html, status_code=404, headers=SECURITY_HEADERS)
    view = build_view(task, _xcoms(session, task))
    return HTMLResponse(render(view), headers=SECURITY_HEADERS)


def parse_map_index(text: str) -> int | None:
    """``-1``, ``3``; the placeholder the UI leaves unfilled on a task that is not mapped means -1."""
    if text == UNFILLED_MAP_INDEX:
        return -1
    try:
        return int(text)
    except ValueError:
        return None


def _task_instance(
    session: Session, dag_id: str, run_id: str, task_id: str, map_index: int
) -> TaskRef | None:
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy import select

    row = session.execute(
        select(TaskInstance.state, TaskInstance.operator).where(
            TaskInstance.dag_id == dag_id,
            TaskInstance.run_id == run_id,
            TaskInstance.task_id == task_id,
            TaskInstance.map_index == map_index,
        )
    ).first()
    if row is None:
        return None
    state = None if row.state is None else str(getattr(row.state, "value", row.state))
    return TaskRef(dag_id, run_id, task_id, map_index, state, row.operator)


def _xcoms(session: Session, task: TaskRef) -> dict[str, Any]:
    """The task instance's XCom values by key, as the REST API reads them (bypassing any custom
    backend: a value it stored elsewhere is a reference, which the page then does not recognise)."""
    from airflow.models.xcom import XComModel
    from sqlalchemy import and_, not_, select

    rows = session.scalars(
        select(XComModel).where(
            XComModel.dag_id == task.dag_id,
            XComModel.run_id == task.run_id,
            XComModel.task_id == task.task_id,
            XComModel.map_index == task.map_index,
            and_(*(not_(XComModel.key.startswith(prefix, autoescape=True)) for prefix in _UNREAD_PREFIXES)),
        )
    )
    return {row.key: XComModel.deserialize_value(row) for row in rows}
