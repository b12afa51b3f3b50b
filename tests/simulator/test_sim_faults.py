"""Injected faults, and whether the faulted request took effect (the ledger tells)."""

from __future__ import annotations

import pytest
import requests

from airflow_provider_fuse import protocol
from airflow_provider_fuse.testing import FuseSimulator

from .conftest import NUMBER, PATIENCE, FuseClient, session


def test_429_storm_refuses_without_queueing(fuse: FuseClient) -> None:
    fuse.sim.faults.inject("queue", "429", count=3, retry_after=2)
    refused = [fuse.queue(phone_number=NUMBER) for _ in range(3)]
    assert [(a.status_code, a.headers["Retry-After"]) for a in refused] == [(429, "2")] * 3
    assert all("error" in a.json() for a in refused)
    accepted = fuse.queue(phone_number=NUMBER)
    assert accepted.status_code == 200 and accepted.json()["call_id"] == "1"
    entries = fuse.sim.requests("queue")
    assert [(e.fault, e.processed, e.call_ids) for e in entries] == [("429", False, [])] * 3 + [
        (None, True, ["1"])
    ]
    assert sum(e.processed for e in entries) == 1


def test_429_has_a_default_retry_after(fuse: FuseClient) -> None:
    fuse.sim.faults.inject("status", 429)
    assert fuse.session.get(fuse.sim.url + protocol.status_path(1)).headers["Retry-After"] == "1"


@pytest.mark.parametrize("kind", ["500", "503"])
def test_server_errors_refuse_without_queueing(fuse: FuseClient, kind: str) -> None:
    fuse.sim.faults.inject("queue", kind)
    answer = fuse.queue(phone_number=NUMBER)
    assert answer.status_code == int(kind)
    assert "error" in answer.json()
    assert "Retry-After" not in answer.headers
    (entry,) = fuse.sim.requests("queue")
    assert (entry.status, entry.fault, entry.processed, entry.call_ids) == (int(kind), kind, False, [])
    assert fuse.queue(phone_number=NUMBER).status_code == 200  # count=1 by default


def test_503_can_carry_retry_after(fuse: FuseClient) -> None:
    fuse.sim.faults.inject("cancel", "503", retry_after=30)
    answer = fuse.cancel()
    assert (answer.status_code, answer.headers["Retry-After"]) == (503, "30")


def test_dropped_connection_after_queueing(fuse: FuseClient) -> None:
    fuse.sim.faults.inject("queue", "drop")
    with pytest.raises(requests.ConnectionError):
        fuse.queue(phone_number=NUMBER)
    (entry,) = fuse.sim.requests("queue")
    assert (entry.status, entry.fault, entry.processed, entry.call_ids) == (None, "drop", True, ["1"])
    assert fuse.sim.call("1").spec.digits == "16175551234"  # the call IS queued
    assert fuse.queue_id() == "2"  # and the next request is served normally


def test_slow_response_times_out_but_the_call_is_queued(fuse: FuseClient) -> None:
    fuse.sim.faults.inject("queue", "slow", delay=PATIENCE)  # stop() cuts it short at teardown
    with pytest.raises(requests.ReadTimeout):
        fuse.post(protocol.queue_path(1, 2), {"phone_number": NUMBER}, timeout=0.2)
    (entry,) = fuse.sim.requests("queue")
    assert (entry.status, entry.fault, entry.processed, entry.call_ids) == (200, "slow", True, ["1"])
    assert fuse.details("1")["status"] == "queued"


def test_slow_response_arrives_after_the_delay(fuse: FuseClient) -> None:
    fuse.sim.faults.inject("status", "slow", delay=0.3)
    answer = fuse.session.get(fuse.sim.url + protocol.status_path(1), timeout=PATIENCE)
    assert answer.status_code == 404
    assert answer.elapsed.total_seconds() >= 0.3


def test_malformed_json_after_queueing(fuse: FuseClient) -> None:
    fuse.sim.faults.inject("queue", "malformed")
    answer = fuse.queue(phone_number=NUMBER)
    assert answer.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        answer.json()
    assert "Link" not in answer.headers
    (entry,) = fuse.sim.requests("queue")
    assert (entry.status, entry.fault, entry.processed, entry.call_ids) == (200, "malformed", True, ["1"])


def test_faults_only_hit_their_endpoint_or_all_with_star(fuse: FuseClient) -> None:
    fuse.sim.faults.inject("status", "500")
    assert fuse.queue(phone_number=NUMBER).status_code == 200
    assert fuse.session.get(fuse.sim.url + protocol.status_path(1)).status_code == 500
    fuse.sim.faults.inject("*", "503", count=2)
    assert fuse.cancel().status_code == 503
    assert fuse.session.get(fuse.sim.url + protocol.status_path(1)).status_code == 503
    assert fuse.session.get(fuse.sim.url + protocol.status_path(1)).status_code == 200


def fraction_pattern(seed: int) -> list[int]:
    with FuseSimulator(seed=seed) as sim, session() as client:
        sim.faults.inject("status", "500", fraction=0.5)
        return [client.get(sim.url + protocol.status_path(1)).status_code for _ in range(40)]


def test_fraction_faults_are_random_but_seeded() -> None:
    first = fraction_pattern(seed=7)
    assert set(first) == {404, 500}
    assert 8 <= first.count(500) <= 32
    assert fraction_pattern(seed=7) == first


def test_fraction_with_count_stops_after_count_faults(fuse: FuseClient) -> None:
    fuse.sim.faults.inject("status", "503", fraction=1.0, count=3)
    codes = [fuse.session.get(fuse.sim.url + protocol.status_path(1)).status_code for _ in range(5)]
    assert codes == [503, 503, 503, 404, 404]


def test_clear_removes_pending_faults(fuse: FuseClient) -> None:
    fuse.sim.faults.inject("queue", "500", count=5)
    fuse.sim.faults.clear()
    assert fuse.queue(phone_number=NUMBER).status_code == 200


@pytest.mark.parametrize(
    "kwargs",
    [
        {"endpoint": "callback", "kind": "500"},
        {"endpoint": "queue", "kind": "418"},
        {"endpoint": "queue", "kind": "slow"},
        {"endpoint": "queue", "kind": "500", "fraction": 1.5},
        {"endpoint": "queue", "kind": "500", "count": 0},
    ],
)
def test_inject_rejects_nonsense(sim: FuseSimulator, kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        sim.faults.inject(**kwargs)  # type: ignore[arg-type]
