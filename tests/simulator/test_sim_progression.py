"""Calls progress on the simulated clock as Fuse reports them, with scripted outcomes."""

from __future__ import annotations

import threading
from typing import Any

from airflow_provider_fuse import protocol
from airflow_provider_fuse.testing import FuseSimulator, Outcome
from airflow_provider_fuse.testing.calls import RING_SECONDS, TALK_SECONDS

from .conftest import NUMBER, T0, FuseClient, session

# The documented sample of the status endpoint: these keys, with these types.
SAMPLE_TYPES = {
    "max_attempts": str,
    "attempts": str,
    "events": list,
    "phone_number": str,
    "status": str,
    "queued_timestamp": str,
    "start_timestamp": str,
    "end_timestamp": str,
    "reattempt_wait": str,
    "duration": int,
}


def names(details: dict[str, Any]) -> list[str]:
    return [e["event"] for e in details["events"]]


def test_answered_call_goes_queued_dialing_connected_completed(fuse: FuseClient) -> None:
    call_id = fuse.queue_id()
    seen: list[str] = []
    for _ in range(200):
        details = fuse.details(call_id)
        if not seen or seen[-1] != details["status"]:
            seen.append(details["status"])
        if details["status"] in protocol.TERMINAL_STATUSES:
            break
        fuse.sim.advance(1)
    assert seen == ["queued", "dialing", "connected", "completed"]
    assert names(details) == ["queued", "dialing", "connected", "disconnected"]
    events = {e["event"]: e["timestamp"] for e in details["events"]}
    assert events["queued"] == T0 and events["dialing"] == T0 + 1
    assert RING_SECONDS[0] <= events["connected"] - events["dialing"] <= RING_SECONDS[1]
    assert TALK_SECONDS[0] <= details["duration"] <= TALK_SECONDS[1]
    assert details["start_timestamp"] == str(events["connected"])
    assert details["end_timestamp"] == str(events["disconnected"])
    assert details["duration"] == events["disconnected"] - events["connected"]
    assert details["attempts"] == "1"


def test_status_body_has_the_documented_odd_types(fuse: FuseClient) -> None:
    call_id = fuse.queue_id(phone_number="tel:+16173720293;ani=8009957586")
    details = fuse.at(call_id, T0 + 3600)
    assert {k: type(v) for k, v in details.items()} == SAMPLE_TYPES
    assert details["phone_number"] == "'16173720293'"
    assert details["max_attempts"] == "1" and details["reattempt_wait"] == "300"
    for field in ("attempts", "queued_timestamp", "start_timestamp", "end_timestamp"):
        assert details[field].isdigit()
    assert all(set(e) == {"event", "timestamp"} and type(e["timestamp"]) is int for e in details["events"])


def test_details_report_zero_times_before_connecting(fuse: FuseClient) -> None:
    details = fuse.details(fuse.queue_id())
    assert (details["start_timestamp"], details["end_timestamp"], details["duration"]) == ("0", "0", 0)
    assert details["queued_timestamp"] == str(T0)


def test_busy_twice_then_answered_on_the_third_attempt(fuse: FuseClient) -> None:
    fuse.sim.script(NUMBER, "busy:2")
    call_id = fuse.queue_id(max_attempts=3, reattempt_wait=60)
    after_first = fuse.at(call_id, T0 + 10)
    assert (after_first["status"], after_first["attempts"]) == ("queued", "1")
    assert names(after_first)[-1] == "busy"
    details = fuse.at(call_id, T0 + 3600)
    assert (details["status"], details["attempts"]) == ("completed", "3")
    assert names(details) == [
        "queued",
        "dialing",
        "busy",
        "dialing",
        "busy",
        "dialing",
        "connected",
        "disconnected",
    ]
    busy_at = [e["timestamp"] for e in details["events"] if e["event"] == "busy"]
    dialing_at = [e["timestamp"] for e in details["events"] if e["event"] == "dialing"]
    assert [d - b for b, d in zip(busy_at, dialing_at[1:], strict=True)] == [60, 60]


def test_never_answered_fails_after_max_attempts(fuse: FuseClient) -> None:
    fuse.sim.script(NUMBER, "never")
    call_id = fuse.queue_id(max_attempts=4, reattempt_wait=600)
    assert fuse.at(call_id, T0 + 1800)["status"] == "queued"
    details = fuse.at(call_id, T0 + 86400)
    assert (details["status"], details["attempts"], details["duration"]) == ("failed", "4", 0)
    assert names(details).count("no_answer") == 4


def test_single_attempt_no_answer_fails(fuse: FuseClient) -> None:
    fuse.sim.script(NUMBER, "no_answer:1")
    details = fuse.at(fuse.queue_id(), T0 + 3600)
    assert (details["status"], details["attempts"]) == ("failed", "1")


def test_rejected_call_is_not_reattempted(fuse: FuseClient) -> None:
    fuse.sim.script(NUMBER, Outcome("reject"))
    call_id = fuse.queue_id(max_attempts=3, reattempt_wait=60)
    details = fuse.at(call_id, T0 + 86400)
    assert (details["status"], details["attempts"]) == ("rejected", "1")
    assert names(details) == ["queued", "dialing", "rejected"]


def test_future_start_stays_queued_until_then(fuse: FuseClient) -> None:
    call_id = fuse.queue_id(start_timestamp=T0 + 3600)
    assert fuse.at(call_id, T0 + 3599)["status"] == "queued"
    details = fuse.at(call_id, T0 + 3600)
    assert (details["status"], details["attempts"]) == ("dialing", "1")
    assert details["events"][-1] == {"event": "dialing", "timestamp": T0 + 3600}


def test_end_timestamp_cuts_reattempts_off(fuse: FuseClient) -> None:
    fuse.sim.script(NUMBER, "busy")
    call_id = fuse.queue_id(max_attempts=5, reattempt_wait=60, end_timestamp=T0 + 100)
    assert fuse.at(call_id, T0 + 99)["status"] == "queued"
    details = fuse.at(call_id, T0 + 100)
    assert (details["status"], details["attempts"]) == ("failed", "2")
    assert details["events"][-1] == {"event": "expired", "timestamp": T0 + 100}


def test_end_timestamp_already_past_fails_at_once(fuse: FuseClient) -> None:
    details = fuse.details(fuse.queue_id(end_timestamp=T0 - 60))
    assert (details["status"], details["attempts"]) == ("failed", "0")
    assert names(details) == ["queued", "expired"]


def test_cancel_ends_the_deployments_pending_calls(fuse: FuseClient) -> None:
    done = fuse.queue_id()
    fuse.sim.advance(3600)
    pending = [fuse.queue_id(), fuse.queue_id(start_timestamp=T0 + 86400)]
    elsewhere = fuse.queue(phone_number=NUMBER, dep=3).json()["call_id"]
    fuse.sim.advance(2)
    answer = fuse.cancel()
    assert (answer.status_code, answer.content) == (202, b"")
    now = int(fuse.sim.now())
    for call_id in pending:
        details = fuse.details(call_id)
        assert details["status"] == "canceled"
        assert details["events"][-1] == {"event": "canceled", "timestamp": now}
    assert fuse.at(pending[1], T0 + 2 * 86400)["status"] == "canceled"  # its future was dropped
    assert fuse.details(done)["status"] == "completed"
    assert fuse.details(elsewhere)["status"] != "canceled"
    assert fuse.sim.requests("cancel")[0].call_ids == pending


def test_queue_answer_has_id_body_and_link_header(fuse: FuseClient) -> None:
    answers = [fuse.queue(phone_number=NUMBER) for _ in range(3)]
    ids = [a.json()["call_id"] for a in answers]
    assert all(isinstance(i, str) and i.isdigit() for i in ids)
    assert [int(i) for i in ids] == sorted(int(i) for i in ids) and len(set(ids)) == 3
    for answer, call_id in zip(answers, ids, strict=True):
        assert answer.json() == protocol.queue_response(call_id)
        assert answer.headers["Link"] == protocol.link_header(fuse.sim.url, call_id)
        assert protocol.parse_queue_response({}, answer.headers["Link"]) == call_id


def test_bulk_queue_answers_ids_in_row_order(fuse: FuseClient) -> None:
    fuse.sim.script("6175550000", "reject")
    csv_text = protocol.build_bulk_csv(
        [("tel:+16175551111", {"name": "Ann"}), ("6175550000", {"name": "Bob", "pin": 7}), (NUMBER, {})]
    ).decode()
    answer = fuse.bulk(csv_text, max_attempts=2, reattempt_wait=90)
    assert answer.status_code == 200, answer.text
    ids = protocol.parse_bulk_queue_response(answer.json())
    assert ids is not None and len(ids) == 3
    calls = [fuse.sim.call(i) for i in ids]
    assert [c.spec.digits for c in calls] == ["16175551111", "6175550000", "16175551234"]
    assert [c.spec.variables for c in calls] == [{"name": "Ann"}, {"name": "Bob", "pin": "7"}, {}]
    assert all(c.spec.options.max_attempts == 2 and c.spec.options.reattempt_wait == 90 for c in calls)
    assert fuse.at(ids[1], T0 + 3600)["status"] == "rejected"
    entry = fuse.sim.requests("bulk_queue")[0]
    assert (entry.call_ids, entry.form[protocol.BULK_CSV_FIELD]) == (ids, csv_text)


def test_bulk_queue_rejects_the_whole_upload_for_one_bad_row(fuse: FuseClient) -> None:
    answer = fuse.bulk(f"destination,name\n{NUMBER},Ann\nnot-a-number,Bob\n")
    assert answer.status_code == 400
    assert answer.json()["error"].startswith("row 2: phone_number is not a valid phone number")
    assert fuse.sim.requests("bulk_queue")[0].call_ids == []
    assert fuse.queue_id() == "1"  # nothing was queued before it


def test_bulk_queue_checks_the_csv_and_shared_fields(fuse: FuseClient) -> None:
    missing = fuse.session.post(fuse.sim.url + protocol.bulk_queue_path(1, 2), data={"max_attempts": "1"})
    assert "'csv' file is required" in missing.json()["error"]
    assert "'destination' column" in fuse.bulk("number\n6175551234\n").json()["error"]
    assert fuse.bulk("destination\n").json() == {"error": "the CSV has no rows"}
    assert "requires reattempt_wait" in fuse.bulk(f"destination\n{NUMBER}\n", max_attempts=3).json()["error"]


def test_scripts_match_any_spelling_of_the_number(fuse: FuseClient) -> None:
    fuse.sim.script("tel:+1 (617) 555-1234;ani=8009957586", "reject")
    for spelling in ("6175551234", "+16175551234", "tel:+16175551234;postd=1"):
        assert fuse.at(fuse.queue_id(phone_number=spelling), fuse.sim.now() + 600)["status"] == "rejected"
    assert fuse.at(fuse.queue_id(phone_number="6175559999"), fuse.sim.now() + 600)["status"] == "completed"


def test_default_outcome_is_configurable() -> None:
    with FuseSimulator(clock=lambda: float(T0), default_outcome="busy:1") as sim, session() as client:
        fuse = FuseClient(sim, client)
        call_id = fuse.queue_id(max_attempts=2, reattempt_wait=60)
        assert names(fuse.at(call_id, T0 + 3600)).count("busy") == 1
        sim.set_default_outcome("reject")
        assert fuse.at(fuse.queue_id(), T0 + 7200)["status"] == "rejected"


def test_speed_turns_a_calls_real_seconds_into_simulated_minutes() -> None:
    real = [float(T0)]
    with FuseSimulator(speed=600, clock=lambda: real[0]) as sim, session() as client:
        call_id = FuseClient(sim, client).queue_id(start_timestamp=T0 + 3600)
        real[0] += 1.5
        assert (sim.now(), sim.now(call_id)) == (T0 + 1.5, T0 + 900)
        assert sim.advance(100) == T0 + 101.5 and sim.now(call_id) == T0 + 1000


def test_concurrent_queues_get_distinct_ids(fuse: FuseClient) -> None:
    ids: list[str] = []

    def worker() -> None:
        with session() as client:
            mine = FuseClient(fuse.sim, client)
            ids.extend(mine.queue_id() for _ in range(20))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(ids, key=int) == [str(n) for n in range(1, 121)]
    assert len(fuse.sim.requests("queue")) == 120


def test_cancel_leaves_a_conversation_in_progress_alone(fuse: FuseClient) -> None:
    call_id = fuse.queue_id()
    for _ in range(60):
        fuse.sim.advance(1)
        if fuse.details(call_id)["status"] == "connected":
            break
    assert fuse.details(call_id)["status"] == "connected"
    assert fuse.cancel().status_code == 202
    fuse.sim.advance(3600)
    assert fuse.details(call_id)["status"] == "completed"
    assert fuse.sim.requests("cancel")[0].call_ids == []
