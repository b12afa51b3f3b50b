"""The plugin is registered through the airflow.plugins entry point, and costs a task nothing."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path


def test_airflow_lists_the_fuse_plugin_with_its_app_under_fuse(tmp_path: Path) -> None:
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    airflow = Path(sys.executable).parent / "airflow"
    listed = subprocess.run(
        [str(airflow), "plugins", "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    (listing,) = [line for line in listed.stdout.splitlines() if line.startswith("[{")]
    plugins = {p["name"]: p for p in json.loads(listing)}
    fuse = plugins["fuse"]
    assert fuse["fastapi_apps"] == [
        {"app": "fastapi.applications.FastAPI", "url_prefix": "/fuse", "name": "Fuse"}
    ]
    assert "airflow.plugins" in fuse["source"]


def test_loading_the_plugin_class_imports_no_web_framework() -> None:
    """Every task process loads every plugin: the app is built only when the API server reads it."""
    code = (
        "import sys\n"
        "try:\n    import airflow.sdk.plugins_manager\n"  # Airflow 3.2+
        "except ImportError:\n    import airflow.plugins_manager\n"
        "before = set(sys.modules)\n"
        "import airflow_provider_fuse.plugins.fuse as f; f.FusePlugin()\n"
        "print('NEW', sorted(set(sys.modules) - before))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    (line,) = [line for line in shown.stdout.splitlines() if line.startswith("NEW ")]
    new = ast.literal_eval(line.removeprefix("NEW "))
    # Only the provider's own modules (Airflow 3.1 has not imported the package's root yet): no FastAPI.
    assert {"airflow_provider_fuse.plugins", "airflow_provider_fuse.plugins.fuse"} <= set(new)
    assert [m for m in new if m.split(".")[0] != "airflow_provider_fuse"] == []
