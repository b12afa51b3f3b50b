"""result_url callbacks reach a local receiver when calls end, and are recorded."""

from __future__ import annotations

import json
import socket

from airflow_provider_fuse import protocol
from airflow_provider_fuse.testing import FuseSimulator

from .conftest import T0, FuseClient, Receiver, session, wait_until


def test_callback_posts_the_final_call_details(fuse: FuseClient, receiver: Receiver) -> None:
    call_id = fuse.queue_id(result_url=receiver.url("/result?call=1"))
    fuse.sim.advance(3600)
    path, content_type, body = receiver.next()
    assert (path, content_type) == ("/result?call=1", "application/json")
    assert body == fuse.details(call_id)
    assert body["status"] == "completed"
    assert protocol.parse_result_callback(json.dumps(body).encode(), content_type) == body
    (entry,) = wait_until(lambda: fuse.sim.callbacks)
    assert (entry.path, entry.status, entry.call_ids, entry.error) == (
        receiver.url("/result?call=1"),
        200,
        [call_id],
        None,
    )


def test_callbacks_come_when_each_call_ends_once(fuse: FuseClient, receiver: Receiver) -> None:
    fuse.sim.script("6175550000", "reject")
    slow = fuse.queue_id(result_url=receiver.url("/slow"))
    quick = fuse.queue_id(phone_number="6175550000", result_url=receiver.url("/quick"))
    fuse.queue_id()  # no result_url: no callback
    fuse.sim.advance(10)
    path, _, body = receiver.next()
    assert (path, body["status"]) == ("/quick", "rejected")
    assert fuse.sim.status(slow) != "completed"
    fuse.sim.advance(3600)
    path, _, body = receiver.next()
    assert (path, body["status"]) == ("/slow", "completed")
    wait_until(lambda: len(fuse.sim.callbacks) == 2)
    assert [e.call_ids for e in fuse.sim.callbacks] == [[quick], [slow]]
    fuse.queue_id(result_url=receiver.url("/last"))
    fuse.sim.advance(3600)
    assert receiver.next()[0] == "/last"  # a repeated callback would have come before this one


def test_canceled_call_gets_its_callback(fuse: FuseClient, receiver: Receiver) -> None:
    call_id = fuse.queue_id(start_timestamp=T0 + 86400, result_url=receiver.url())
    assert fuse.cancel().status_code == 202
    _, _, body = receiver.next()
    assert body["status"] == "canceled" and body == fuse.details(call_id)


def test_callbacks_fire_on_the_running_clock(receiver: Receiver) -> None:
    with FuseSimulator(speed=60_000) as sim, session() as client:
        call_id = FuseClient(sim, client).queue_id(result_url=receiver.url())
        _, _, body = receiver.next()  # about 2 ms of real time; nobody advances the clock
        assert body["status"] == "completed" and sim.status(call_id) == "completed"


def test_failed_deliveries_are_recorded(fuse: FuseClient, receiver: Receiver) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{closed.getsockname()[1]}/result"
    receiver.status = 500
    fuse.queue_id(result_url=dead_url)
    fuse.queue_id(result_url=receiver.url())
    fuse.sim.advance(3600)
    entries = wait_until(lambda: len(fuse.sim.callbacks) == 2 and fuse.sim.callbacks)
    by_url = {e.path: e for e in entries}
    assert by_url[dead_url].status is None and "Connection refused" in (by_url[dead_url].error or "")
    assert (by_url[receiver.url()].status, by_url[receiver.url()].processed) == (500, False)
    assert all(e.endpoint == "callback" and e.method == "POST" for e in entries)
