"""The operator tests poll a mocked Fuse every few milliseconds, which the polling limits refuse for any
host but loopback; here they are lifted. The limits themselves are tested in tests/attack/test_bad_input.py
and tests/unit/test_validation.py.
"""

from __future__ import annotations

import pytest

from airflow_provider_fuse import validation


@pytest.fixture(autouse=True)
def _no_polling_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validation, "MIN_POLL_INTERVAL", 0.0)
    monkeypatch.setattr(validation, "MAX_REQUESTS_PER_SECOND", float("inf"))
