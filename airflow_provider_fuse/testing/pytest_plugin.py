"""The ``fuse_simulator`` pytest fixture, registered as a pytest11 plugin by the package.

Every pytest run of a project that installs the provider imports this module, so it imports nothing
heavy: the simulator is loaded inside the fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_provider_fuse.testing.simulator import FuseSimulator


@pytest.fixture
def fuse_simulator() -> Iterator[FuseSimulator]:
    """A running FuseSimulator with default settings (speed 600, dev@example.com / dev-key)."""
    from airflow_provider_fuse.testing.simulator import FuseSimulator

    with FuseSimulator() as simulator:
        yield simulator
