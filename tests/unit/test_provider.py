"""The provider registers with Airflow: `airflow providers list` and `airflow providers hooks` see it."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import airflow_provider_fuse
from airflow_provider_fuse import get_provider_info

AIRFLOW = str(Path(sys.executable).parent / "airflow")


def test_entry_point_returns_the_provider_info() -> None:
    (ep,) = [
        ep
        for ep in entry_points(group="apache_airflow_provider")
        if ep.value.startswith("airflow_provider_fuse")
    ]
    assert ep.load()() == get_provider_info()


def test_connection_form_is_declared() -> None:
    (conn_type,) = get_provider_info()["connection-types"]
    assert conn_type["connection-type"] == "fuse"
    assert conn_type["hook-name"] == "Plum Fuse"
    behaviour = conn_type["ui-field-behaviour"]
    assert behaviour["hidden-fields"] == ["schema", "port"]
    assert behaviour["relabeling"] == {"host": "Base URL", "login": "E-mail", "password": "Developer key"}
    assert behaviour["placeholders"]["host"] == "https://fuse.plumvoice.com/api"
    fields = conn_type["conn-fields"]
    assert set(fields) == {
        "request_timeout",
        "connect_timeout",
        "retry_limit",
        "default_region",
        "variables_field",
        "variables_format",
        "callback_secret",
    }
    # "format: password" makes Airflow's form mask the secret (providers_manager's is_sensitive).
    assert fields["callback_secret"]["schema"]["format"] == "password"
    assert fields["default_region"]["schema"]["default"] == "US"
    assert fields["variables_field"]["schema"]["default"] == "call_parameters"
    assert fields["variables_format"]["schema"] == {"type": ["string", "null"], "default": "json"}
    description = fields["variables_format"]["description"]
    assert all(name in description for name in ("json =", "fields =", "bracketed =", "query ="))
    assert "Campaigns always send variables as CSV columns" in description


def test_every_registered_module_and_class_imports() -> None:
    import importlib

    info = get_provider_info()
    for kind in ("hooks", "operators", "sensors", "triggers"):
        for entry in info[kind]:
            for module in entry["python-modules"]:
                importlib.import_module(module)
    for dotted in [info["connection-types"][0]["hook-class-name"], *info.get("notifications", [])]:
        module, _, name = dotted.rpartition(".")
        assert getattr(importlib.import_module(module), name)


def test_package_import_is_light() -> None:
    code = "import sys, airflow_provider_fuse; print(sorted(m for m in ('requests', 'aiohttp', 'phonenumbers', 'airflow') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert airflow_provider_fuse.__version__


@pytest.mark.parametrize(
    ("command", "expected"),
    [("list", "airflow-provider-fuse"), ("hooks", "airflow_provider_fuse.hooks.fuse.FuseHook")],
)
def test_airflow_cli_lists_the_provider(command: str, expected: str) -> None:
    result = subprocess.run(
        [AIRFLOW, "providers", command, "--output", "plain"],
        capture_output=True,
        text=True,
        env=os.environ,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert expected in result.stdout
    if command == "hooks":
        assert any(line.split()[:1] == ["fuse"] for line in result.stdout.splitlines())
