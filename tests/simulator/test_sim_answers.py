"""The simulator answers the ways Fuse might: bulk answers without ids, XML, a queue answer without id."""

from __future__ import annotations

import pytest

from airflow_provider_fuse import protocol
from airflow_provider_fuse.exceptions import FuseResponseError
from airflow_provider_fuse.hooks.fuse import FuseHook
from airflow_provider_fuse.models import CallRequest
from airflow_provider_fuse.testing import FuseSimulator

from .conftest import NUMBER, session

CSV = "destination,name\ntel:+16175551234,Ann\ntel:+16175550000,Bob\n"


@pytest.mark.parametrize(
    ("bulk_answer", "status", "body"),
    [("ids", 200, {"call_ids": ["1", "2"]}), ("success_only", 200, {"success": True}), ("empty", 202, None)],
)
def test_bulk_answer_shapes_and_the_calls_are_queued_either_way(
    bulk_answer: str, status: int, body: object
) -> None:
    with FuseSimulator(bulk_answer=bulk_answer) as sim:
        client = session()
        answer = client.post(
            sim.url + protocol.bulk_queue_path(1, 2),
            files={protocol.BULK_CSV_FIELD: ("calls.csv", CSV.encode(), "text/csv")},
        )
        assert answer.status_code == status
        assert (answer.json() if answer.content else None) == body
        (entry,) = sim.requests("bulk_queue")
        assert entry.processed and entry.call_ids == ["1", "2"]
        assert sim.variables("2") == {"name": "Bob"}


def test_an_unknown_bulk_answer_is_refused() -> None:
    with pytest.raises(ValueError, match="bulk_answer"):
        FuseSimulator(bulk_answer="xml")


@pytest.fixture
def hooked(sim: FuseSimulator, monkeypatch: pytest.MonkeyPatch) -> FuseSimulator:
    """The frozen-clock simulator behind ``fuse_default``."""
    for name, value in sim.connection_env().items():
        monkeypatch.setenv(name, value)
    return sim


def test_the_xml_fault_answers_xml_after_queueing(hooked: FuseSimulator) -> None:
    sim = hooked
    sim.faults.inject("queue", "xml")
    with pytest.raises(FuseResponseError, match="application/xml"):
        FuseHook().queue_call(1, 2, CallRequest(NUMBER))
    (entry,) = sim.requests("queue")
    assert entry.processed and entry.fault == "xml" and sim.call("1")  # the call IS queued


def test_the_no_id_fault_answers_success_without_id_or_link(hooked: FuseSimulator) -> None:
    sim = hooked
    sim.faults.inject("queue", "no_id")
    with pytest.raises(FuseResponseError, match="probably queued") as caught:
        FuseHook().queue_call(1, 2, CallRequest(NUMBER))
    assert '"success": true' in str(caught.value)
    (entry,) = sim.requests("queue")
    assert entry.processed and entry.call_ids == ["1"]
