"""The Fuse plugin of Airflow's API server: result callbacks in (``/fuse/callbacks/{token}``) and the
pages of call and campaign tasks (``/fuse/tasks/{dag_id}/{run_id}/{task_id}/{map_index}``).

The paths below are a contract with every ``result_url`` already handed to Fuse and every extra link
already stored: never change them.
"""

from __future__ import annotations

from urllib.parse import quote

#: Where the API server mounts the plugin's app, and the callback route inside it.
PLUGIN_URL_PREFIX = "/fuse"
CALLBACKS_ROUTE = "/callbacks"
CALLBACKS_PATH = f"{PLUGIN_URL_PREFIX}{CALLBACKS_ROUTE}/"
#: The page of one task instance (a call or a campaign), inside the plugin's app.
TASK_PAGES_ROUTE = "/tasks"
TASK_PAGE_ROUTE = TASK_PAGES_ROUTE + "/{dag_id}/{run_id}/{task_id}/{map_index}"
#: The page's address relative to ``[api] base_url`` (no leading slash, so it resolves under a path
#: prefix too), with the placeholders Airflow's UI fills in for a ``task_instance`` external view.
UNFILLED_MAP_INDEX = "{MAP_INDEX}"  # what the UI leaves in the href of a task that is not mapped
TASK_PAGE_HREF = (
    f"{PLUGIN_URL_PREFIX[1:]}{TASK_PAGES_ROUTE}/{{DAG_ID}}/{{RUN_ID}}/{{TASK_ID}}/{UNFILLED_MAP_INDEX}"
)


def task_page_path(dag_id: str, run_id: str, task_id: str, map_index: int | None) -> str:
    """``fuse/tasks/<dag_id>/<run_id>/<task_id>/<map_index>``, each part URL-encoded (relative)."""
    index = -1 if map_index is None else int(map_index)
    parts = (quote(str(part), safe="") for part in (dag_id, run_id, task_id, index))
    return f"{PLUGIN_URL_PREFIX[1:]}{TASK_PAGES_ROUTE}/" + "/".join(parts)
