"""The ``fuse`` Airflow plugin, registered through the ``airflow.plugins`` entry point.

Every Airflow process loads every plugin (each task process too), so this module imports nothing
but the plugin base class: the FastAPI app is built only when the API server asks for it, once.
"""

from __future__ import annotations

from functools import cache
from typing import Any

try:  # Airflow 3.2+: the Task SDK's class, so a task process does not import Airflow core for it
    from airflow.sdk.plugins_manager import AirflowPlugin
except ImportError:  # Airflow 3.1
    from airflow.plugins_manager import AirflowPlugin  # type: ignore[assignment]

from airflow_provider_fuse.plugins import PLUGIN_URL_PREFIX, TASK_PAGE_HREF

#: The task page as a tab of every task instance in Airflow's UI (3.1+), framed at ``plugin/fuse``;
#: the href is relative, so it resolves against ``[api] base_url`` (a path prefix included).
TASK_PAGE_VIEW = {
    "name": "Fuse",
    "href": TASK_PAGE_HREF,
    "destination": "task_instance",
    "url_route": "fuse",
}


@cache
def _fastapi_apps() -> list[dict[str, Any]]:
    from airflow_provider_fuse.plugins.app import create_app

    return [{"app": create_app(), "url_prefix": PLUGIN_URL_PREFIX, "name": "Fuse"}]


class FusePlugin(AirflowPlugin):
    """Mounts the Fuse app under ``/fuse`` in the API server (docs/callbacks.md, docs/pages.md)."""

    name = "fuse"
    external_views = [TASK_PAGE_VIEW]

    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return _fastapi_apps()
