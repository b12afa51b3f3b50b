"""Apache Airflow provider for Plum Voice's Fuse outbound-call API.

Kept import-light: DAG files import operators from their own modules, and Airflow reads
``get_provider_info`` without loading any hook or HTTP client.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

DISTRIBUTION = "airflow-provider-fuse"
CONN_TYPE = "fuse"
DEFAULT_CONN_ID = "fuse_default"


def project_url(label: str) -> str:
    """A URL of ``[project.urls]`` (``Documentation``, ``Source``, ...), read from the installed metadata.

    pyproject.toml is its one home. Airflow 3.1.8 and 3.3 read ``Documentation`` there themselves
    (apache/airflow#59576) and replace the provider info's ``documentation-url``; earlier 3.1 releases
    show only what the provider info carries.
    """
    from importlib.metadata import metadata

    for entry in metadata(DISTRIBUTION).get_all("Project-URL") or []:
        name, _, url = entry.partition(",")
        if name.strip().lower() == label.lower():
            return url.strip()
    raise LookupError(f"{DISTRIBUTION} declares no {label} URL in [project.urls]")


def get_provider_info() -> dict[str, Any]:
    """Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``)."""
    from airflow_provider_fuse.connection import connection_type

    return {
        "package-name": DISTRIBUTION,
        "name": "Plum Fuse",
        "description": "Place and track outbound phone calls through Plum Voice's Fuse IVR platform.",
        "documentation-url": project_url("Documentation"),
        "versions": [__version__],
        "connection-types": [connection_type()],
        "hooks": [{"integration-name": "Plum Fuse", "python-modules": ["airflow_provider_fuse.hooks.fuse"]}],
        "operators": [
            {"integration-name": "Plum Fuse", "python-modules": ["airflow_provider_fuse.operators.fuse"]}
        ],
        "sensors": [
            {"integration-name": "Plum Fuse", "python-modules": ["airflow_provider_fuse.sensors.fuse"]}
        ],
        "triggers": [
            {"integration-name": "Plum Fuse", "python-modules": ["airflow_provider_fuse.triggers.fuse"]}
        ],
        "notifications": ["airflow_provider_fuse.notifications.fuse.FuseCallNotifier"],
        "extra-links": [
            "airflow_provider_fuse.links.FuseCallLink",
            "airflow_provider_fuse.links.FuseCampaignLink",
        ],
        "integrations": [
            {
                "integration-name": "Plum Fuse",
                "external-doc-url": "https://docs.plumvoice.com/fuse",
                "tags": ["service"],
            }
        ],
    }
