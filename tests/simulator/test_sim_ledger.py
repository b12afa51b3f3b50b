"""The ledger records every request in arrival order, with what it did."""

from __future__ import annotations

import pytest

from airflow_provider_fuse import protocol
from airflow_provider_fuse.testing import FuseSimulator

from .conftest import NUMBER, T0, FuseClient


def test_ledger_records_every_request_in_order(fuse: FuseClient) -> None:
    call_id = fuse.queue_id(max_attempts=2, reattempt_wait=60, call_parameters='{"a": 1}')
    fuse.sim.advance(30)
    fuse.details(call_id)
    fuse.session.get(fuse.sim.url + "/nowhere")
    fuse.cancel()
    entries = fuse.sim.ledger
    assert [(e.method, e.endpoint, e.status) for e in entries] == [
        ("POST", "queue", 200),
        ("GET", "status", 200),
        ("GET", "other", 404),
        ("DELETE", "cancel", 202),
    ]
    queued = entries[0]
    assert queued.path == "/api" + protocol.queue_path(1, 2)
    assert queued.form == {
        "phone_number": NUMBER,
        "max_attempts": "2",
        "reattempt_wait": "60",
        "call_parameters": '{"a": 1}',
    }
    assert (queued.call_ids, queued.processed, queued.fault, queued.sim_time) == ([call_id], True, None, T0)
    assert entries[1].call_ids == [call_id] and entries[1].sim_time == T0 + 30
    assert entries[0].time <= entries[1].time <= entries[3].time
    assert fuse.sim.requests("status") == [entries[1]]


def test_exactly_one_queue_request_reached_fuse(fuse: FuseClient) -> None:
    fuse.sim.faults.inject("queue", "503", count=2)
    codes = [fuse.queue(phone_number=NUMBER).status_code for _ in range(3)]
    assert codes == [503, 503, 200]
    assert [e.processed for e in fuse.sim.requests("queue")] == [False, False, True]


def test_ledger_is_a_copy(fuse: FuseClient) -> None:
    fuse.queue_id()
    fuse.sim.ledger.clear()
    assert len(fuse.sim.ledger) == 1


def test_unknown_endpoint_name_is_an_error(sim: FuseSimulator) -> None:
    with pytest.raises(ValueError, match="unknown endpoint"):
        sim.requests("queues")


def test_call_lookup(fuse: FuseClient) -> None:
    call_id = fuse.queue_id()
    assert fuse.sim.call(int(call_id)).call_id == call_id
    assert fuse.sim.status(call_id) == "queued"
    with pytest.raises(KeyError):
        fuse.sim.call("999")
