"""Outcome parsing and the invariants of every precomputed call timeline."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_fuse import protocol
from airflow_provider_fuse.testing import Outcome
from airflow_provider_fuse.testing.calls import CallOptions, build_timeline

T0 = 1_700_000_000


@pytest.mark.parametrize(
    ("spec", "kind", "failures"),
    [
        ("answer", "answer", None),
        ("busy:2", "busy", 2),
        (" No_Answer:1 ", "no_answer", 1),
        ("busy", "busy", None),
        ("never", "never", None),
        ("reject", "reject", None),
    ],
)
def test_outcome_parse(spec: str, kind: str, failures: int | None) -> None:
    outcome = Outcome.parse(spec)
    assert (outcome.kind, outcome.failures) == (kind, failures)
    assert Outcome.parse(str(outcome)) == outcome
    assert Outcome.parse(outcome) is outcome


@pytest.mark.parametrize("spec", ["voicemail", "busy:x", "busy:-1", "answer:2", "never:3", ""])
def test_outcome_parse_rejects_nonsense(spec: str) -> None:
    with pytest.raises(ValueError):
        Outcome.parse(spec)


@pytest.mark.parametrize(
    ("spec", "results"),
    [
        ("answer", ["answer", "answer"]),
        ("busy:2", ["busy", "busy", "answer"]),
        ("no_answer:1", ["no_answer", "answer", "answer"]),
        ("busy", ["busy", "busy", "busy"]),
        ("never", ["no_answer", "no_answer"]),
        ("reject", ["reject", "reject"]),
    ],
)
def test_outcome_per_attempt(spec: str, results: list[str]) -> None:
    assert [Outcome.parse(spec).attempt_result(n) for n in range(1, len(results) + 1)] == results


outcomes = st.one_of(
    st.sampled_from([Outcome("answer"), Outcome("never"), Outcome("reject"), Outcome("busy")]),
    st.builds(Outcome, st.sampled_from(["busy", "no_answer"]), st.integers(0, 12)),
)


@st.composite
def call_options(draw: st.DrawFn) -> CallOptions:
    start = draw(st.one_of(st.none(), st.integers(T0 - 100, T0 + 10_000)))
    end = draw(st.one_of(st.none(), st.integers((start or T0) + 1, T0 + 20_000)))
    return CallOptions(
        start_timestamp=start,
        end_timestamp=end,
        max_attempts=draw(st.integers(*protocol.MAX_ATTEMPTS_RANGE)),
        reattempt_wait=draw(st.integers(*protocol.REATTEMPT_WAIT_RANGE)),
    )


@given(call_id=st.integers(1, 10**6).map(str), options=call_options(), outcome=outcomes)
def test_timeline_invariants(call_id: str, options: CallOptions, outcome: Outcome) -> None:
    timeline = build_timeline(call_id, T0, options, outcome)
    stamps = [e.timestamp for e in timeline]
    assert stamps == sorted(stamps) and timeline[0].name == "queued" and timeline[0].timestamp == T0
    assert timeline[-1].status in protocol.TERMINAL_STATUSES
    assert all(e.status in protocol.ACTIVE_STATUSES for e in timeline[:-1])
    dials = [e for e in timeline if e.name == "dialing"]
    assert len(dials) == timeline[-1].attempts <= options.max_attempts
    assert [e.attempts for e in dials] == list(range(1, len(dials) + 1))
    assert all(e.timestamp >= (options.start_timestamp or T0) for e in dials)
    if options.end_timestamp is not None:
        assert all(e.timestamp < options.end_timestamp for e in dials)
    if timeline[-1].status == protocol.COMPLETED:
        assert outcome.kind not in ("never", "reject")
    assert build_timeline(call_id, T0, options, outcome) == timeline  # deterministic per call id
