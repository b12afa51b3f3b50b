"""Reading one XCom through the Task SDK, from a trigger or a worker alike: the one way this provider does it.

``XCom.get_one`` in a thread reaches the triggerer's supervisor on Airflow 3.1 to 3.3 alike, a worker's
supervisor, and ``airflow dags test``'s in-process one (``XCom.aget_one`` exists from 3.3 only, and the
in-process supervisor cannot be awaited). The SDK's comms are thread-safe (a lock per request).
Import-light: Airflow and asgiref are imported when a value is read.
"""

from __future__ import annotations

from typing import Any


def supervisor_running() -> bool:
    """Whether a Task SDK supervisor runs here to answer XCom reads (a triggerer, a worker, ``dags test``)."""
    from airflow.sdk.execution_time import task_runner

    return getattr(task_runner, "SUPERVISOR_COMMS", None) is not None


async def aget_xcom(key: str, *, dag_id: str, task_id: str, run_id: str, map_index: int | None) -> Any:
    """One XCom value (None when absent), without blocking the event loop."""
    from airflow.sdk.execution_time.xcom import XCom
    from asgiref.sync import sync_to_async

    return await sync_to_async(XCom.get_one)(
        key=key,
        dag_id=dag_id,
        task_id=task_id,
        run_id=run_id,
        map_index=-1 if map_index is None else int(map_index),
    )
