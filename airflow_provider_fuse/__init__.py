"""Apache Airflow provider for Plum Voice's Fuse outbound-call API.

Kept import-light: DAG files import operators from their own modules, and Airflow reads
``get_provider_info`` without loading any hook or HTTP client.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

CONN_TYPE = "fuse"
DEFAULT_CONN_ID = "fuse_default"


def get_provider_info() -> dict[str, Any]:
    """Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``)."""
    from airflow_provider_fuse.protocol import DEFAULT_BASE_URL, DEFAULT_VARIABLES_FIELD

    return {
        "package-name": "airflow-provider-fuse",
        "name": "Plum Fuse",
        "description": "Place and track outbound phone calls through Plum Voice's Fuse IVR platform.",
        "versions": [__version__],
        "connection-types": [
            {
                "connection-type": CONN_TYPE,
                "hook-class-name": "airflow_provider_fuse.hooks.fuse.FuseHook",
                "hook-name": "Plum Fuse",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {"host": "Base URL", "login": "E-mail", "password": "Developer key"},
                    "placeholders": {
                        "host": DEFAULT_BASE_URL,
                        "login": "you@example.com",
                        "password": "Fuse developer key",
                    },
                },
                "conn-fields": {
                    "request_timeout": {
                        "label": "Request timeout (s)",
                        "description": "Read timeout of one HTTP request to Fuse, in seconds.",
                        "schema": {"type": ["number", "null"], "minimum": 1, "default": 30},
                    },
                    "connect_timeout": {
                        "label": "Connect timeout (s)",
                        "description": "How long to wait for a TCP connection to Fuse, in seconds.",
                        "schema": {"type": ["number", "null"], "minimum": 1, "default": 10},
                    },
                    "retry_limit": {
                        "label": "Retry limit",
                        "description": "How many times a safe request is retried on 429, 5xx or network errors.",
                        "schema": {"type": ["integer", "null"], "minimum": 0, "default": 5},
                    },
                    "default_region": {
                        "label": "Default phone region",
                        "description": "ISO country code for numbers given without +country code.",
                        "schema": {"type": ["string", "null"], "default": "US"},
                    },
                    "variables_field": {
                        "label": "Variables form field",
                        "description": "Form-field name carrying application variables (assumed: "
                        f"{DEFAULT_VARIABLES_FIELD}).",
                        "schema": {"type": ["string", "null"], "default": DEFAULT_VARIABLES_FIELD},
                    },
                },
            }
        ],
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
        "extra-links": ["airflow_provider_fuse.links.FuseCallLink"],
        "integrations": [
            {
                "integration-name": "Plum Fuse",
                "external-doc-url": "https://docs.plumvoice.com/fuse",
                "tags": ["service"],
            }
        ],
    }
