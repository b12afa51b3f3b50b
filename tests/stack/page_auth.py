"""The auth manager of tests/stack/test_pages_access.py: Airflow's SimpleAuthManager, except that one
viewer may not read one DAG (SimpleAuthManager alone cannot deny a single DAG to a single user).

Only ``is_authorized_dag`` changes, so the page's ``requires_access_dag`` dependency is the real one,
asking the configured auth manager exactly as the REST API's own task instance routes do.
"""

from __future__ import annotations

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

#: The viewer who may read every DAG but DENIED_DAG.
DENIED_USER = "outsider"
DENIED_DAG = "fuse_pages_secret"


class OneDagDeniedAuthManager(SimpleAuthManager):
    def is_authorized_dag(
        self,
        *,
        method: str,  # ResourceMethod
        user: SimpleAuthManagerUser,
        access_entity: DagAccessEntity | None = None,
        details: DagDetails | None = None,
    ) -> bool:
        if user.get_name() == DENIED_USER and details is not None and details.id == DENIED_DAG:
            return False
        return super().is_authorized_dag(
            method=method,  # type: ignore[arg-type]
            user=user,
            access_entity=access_entity,
            details=details,
        )
