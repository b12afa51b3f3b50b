"""The operator tests poll a mocked Fuse every few milliseconds: the polling limits are lifted here."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_polling_limits(no_polling_limits: None) -> None:
    """Every operator test polls as fast as it likes (see the root conftest's ``no_polling_limits``)."""
