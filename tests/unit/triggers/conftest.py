"""The triggers' clock, injected: time and asyncio.sleep of the trigger module run on a FakeClock."""

from __future__ import annotations

import pytest

from airflow_provider_fuse.triggers import fuse as trigger_module
from tests.callback_support import FakeClock


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(trigger_module, "time", fake)
    monkeypatch.setattr(trigger_module.asyncio, "sleep", fake.asleep)
    return fake
