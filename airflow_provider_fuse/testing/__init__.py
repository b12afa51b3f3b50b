"""A local, stateful Fuse API for demos and tests: ``from airflow_provider_fuse.testing import FuseSimulator``.

Exports are loaded on first use, so that importing the pytest plugin beside this package stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_fuse.testing.calls import Call, Outcome
    from airflow_provider_fuse.testing.ledger import LedgerEntry
    from airflow_provider_fuse.testing.simulator import FuseSimulator

__all__ = ["Call", "FuseSimulator", "LedgerEntry", "Outcome"]

_HOMES = {
    "Call": "airflow_provider_fuse.testing.calls",
    "FuseSimulator": "airflow_provider_fuse.testing.simulator",
    "LedgerEntry": "airflow_provider_fuse.testing.ledger",
    "Outcome": "airflow_provider_fuse.testing.calls",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
