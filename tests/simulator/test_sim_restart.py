"""A stopped simulator starts again where its connection points (an outage, not a move)."""

from __future__ import annotations

import requests

from airflow_provider_fuse import protocol
from airflow_provider_fuse.testing import FuseSimulator


def test_a_restarted_simulator_answers_on_the_same_port() -> None:
    with FuseSimulator() as sim:
        url, env = sim.url, sim.connection_env()
        sim.stop()
        sim.start()
        assert (sim.url, sim.connection_env()) == (url, env)
        answer = requests.get(url + protocol.status_path("1"), auth=(sim.login, sim.password), timeout=30)
    assert answer.status_code == 404
