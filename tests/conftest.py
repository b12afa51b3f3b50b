"""Test settings: a throwaway AIRFLOW_HOME, set before anything imports Airflow."""

from __future__ import annotations

import json
import os
import tempfile

os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="fuse-tests-airflow-home-")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"

import pytest

FUSE_URL = "https://fuse.test/api"
LOGIN = "ops@example.com"
DEVELOPER_KEY = "dk-SECRET-4242"


@pytest.fixture
def fuse_conn(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A `fuse_default` connection pointing at a mocked Fuse host; retries without waiting."""
    from airflow_provider_fuse.hooks.fuse import FuseHook

    monkeypatch.setattr(FuseHook, "backoff", 0)
    conn = {"conn_type": "fuse", "host": FUSE_URL, "login": LOGIN, "password": DEVELOPER_KEY}
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", json.dumps(conn))
    return conn
