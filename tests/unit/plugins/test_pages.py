"""The call and campaign pages: what they show from a task's XComs, escaping, headers, the route.

XComs are built by the provider's own writers (``CallDetails.to_dict()``, ``CampaignResult.to_xcom()``,
the callback record's layout), so a change in what a task pushes breaks these tests, not the page.
The real login and authorization (401, 403 against a running API server) are in
tests/stack/test_pages_access.py; the pages in Chromium in tests/ui/test_pages.py.
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_fuse.callbacks import HEAD_KEY, CallbackEntry, chunk_key
from airflow_provider_fuse.campaign import CampaignCall, CampaignResult
from airflow_provider_fuse.models import CallDetails
from airflow_provider_fuse.plugins import TASK_PAGE_HREF, task_page_path
from airflow_provider_fuse.plugins.page_data import CallView, CampaignView, EmptyView, TaskRef, build_view
from airflow_provider_fuse.plugins.page_html import CONTENT_SECURITY_POLICY, CSS, SECURITY_HEADERS, render
from tests.callback_support import NUMBER, body

FULL = "+" + NUMBER
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def task(operator: str | None = "QueueCallOperator", **fields: Any) -> TaskRef:
    where = {"dag_id": "reminders", "run_id": "manual__1", "task_id": "call", "map_index": -1}
    return TaskRef(**{**where, "state": "success", "operator": operator, **fields})


def call_details(status: str = "completed", **extra: Any) -> dict[str, Any]:
    return dict(CallDetails.from_api(body(status, **extra), call_id="4242").to_dict())


def entry(seq: int, details: dict[str, Any], received: datetime) -> CallbackEntry:
    return {"seq": seq, "received_at": received.isoformat(), "details": details, "phone_digest": None}  # type: ignore[typeddict-item]


def callbacks(*entries: CallbackEntry) -> dict[str, Any]:
    return {HEAD_KEY: {"count": len(entries)}, chunk_key(0): list(entries)}


def at(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def visible_text(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


# --- call pages -------------------------------------------------------------------------------------


def test_a_finished_call_shows_masked_number_status_attempts_duration_and_timeline() -> None:
    details = call_details(attempts="2", max_attempts="3", duration=65)
    view = build_view(task(), {"return_value": details, "call_id": "4242"})
    assert isinstance(view, CallView)
    assert (view.call_id, view.status, view.attempts, view.max_attempts) == ("4242", "completed", 2, 3)
    assert [e.label for e in view.timeline] == [
        "Queued",
        "Fuse event: queued",
        "Started",
        "Fuse event: connected",
        "Ended: completed",
    ]
    html = render(view)
    text = visible_text(html)
    for shown in ("16***123", "completed", "2 of 3", "1 min 5 s", "4242", "Details from the task result"):
        assert shown in text, shown
    assert NUMBER not in html
    assert text.index("Queued") < text.index("Ended: completed")


def test_a_call_still_waiting_shows_the_callback_that_arrived_in_its_timeline() -> None:
    """A deferred task has no return value yet: the callback the plugin recorded is the outcome."""
    details = call_details("failed")
    xcoms = {"call_id": "4242", **callbacks(entry(0, details, T0 + timedelta(days=3650)))}
    view = build_view(task(), xcoms)
    assert isinstance(view, CallView)
    assert (view.status, view.source) == ("failed", "callback")
    assert view.timeline[-1].label == "Callback received: failed"
    assert "Details from the callback" in render(view)


def test_a_callback_about_another_call_is_not_this_calls() -> None:
    other = {**call_details("failed"), "call_id": "999"}
    view = build_view(task(), {"call_id": "4242", **callbacks(entry(0, other, T0))})
    assert isinstance(view, CallView)
    assert view.status is None and view.source == ""
    assert "has not reported this call" in render(view)


def test_a_full_number_in_a_value_is_masked_on_the_page() -> None:
    """Values are masked when pushed; a page never relies on it."""
    details = {**call_details(), "phone_number": FULL}
    html = render(build_view(task(), {"return_value": details}))
    assert NUMBER not in html and FULL not in html
    assert "+16***123" in html


# --- campaign pages ---------------------------------------------------------------------------------


def campaign_result() -> CampaignResult:
    calls = (
        CampaignCall("c1", 1, "+16***231", "completed", 1),
        CampaignCall("c2", 2, "+16***232", "failed", 3),
        CampaignCall("c3", 3, "+16***233", "completed", 1),
        CampaignCall("c4", 4, "+16***234", "canceled", 0),
    )
    return CampaignResult(rows=5, calls=calls, skipped_count=1)


def test_a_campaign_shows_totals_a_chart_of_calls_ended_and_the_rows_not_reached() -> None:
    ended = [
        entry(seq, {**call_details(status), "call_id": cid, "ended_at": at(seq)}, T0 + timedelta(days=seq))
        for seq, (cid, status) in enumerate([("c1", "completed"), ("c2", "failed"), ("c3", "completed")])
    ]
    xcoms = {"return_value": campaign_result().to_xcom(), "campaign_queued": {"rows": 5}, **callbacks(*ended)}
    view = build_view(task("QueueCallsOperator"), xcoms)
    assert isinstance(view, CampaignView)
    assert view.result is not None and view.result.totals == {"completed": 2, "failed": 1, "canceled": 1}
    assert len(view.ended) == 3
    html = render(view)
    totals = html[html.index("Calls by status") : html.index("Calls ended over time")]
    assert re.findall(r"<tr><td><span[^>]*>(\w+)</span></td><td[^>]*>(\d+)</td></tr>", totals) == [
        ("completed", "2"),
        ("canceled", "1"),
        ("failed", "1"),
    ]
    (points,) = re.findall(r'<polyline[^>]* points="([^"]+)"', html)
    assert len(points.split()) == 1 + 2 * 3  # a step per call ended
    assert "3 calls ended between 2026-11-30 09:00:00 UTC and 2026-11-30 09:02:00 UTC" in html
    not_reached = html[html.index("Rows not reached") :]
    assert '<td class="n">0</td><td>c4</td>' in not_reached  # no attempt is 0, not blank
    not_reached = visible_text(not_reached)
    assert "c2" in not_reached and "c4" in not_reached
    assert "c1" not in not_reached and "c3" not in not_reached


def test_a_campaign_in_progress_shows_what_was_queued() -> None:
    view = build_view(task("QueueCallsOperator", state="deferred"), {"campaign_queued": {"rows": 12}})
    assert isinstance(view, CampaignView) and view.result is None
    text = visible_text(render(view))
    assert "Rows queued 12" in " ".join(text.split())
    assert "has not concluded" in text
    assert "No call end was reported by a callback yet" in text


def test_a_failed_campaign_shows_the_result_it_pushed_under_campaign_result() -> None:
    view = build_view(task("QueueCallsOperator"), {"campaign_result": campaign_result().to_xcom()})
    assert isinstance(view, CampaignView) and view.result == CampaignResult.from_xcom(
        campaign_result().to_xcom()
    )


# --- nothing to show --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "xcoms", "fuse_task", "says"),
    [
        pytest.param(
            "PythonOperator", {"return_value": {"rows": 3}}, False, "not a Fuse call", id="other-task"
        ),
        pytest.param("QueueCallOperator", {}, True, "no call or campaign data yet", id="call-not-queued"),
        pytest.param(
            "QueueCallsOperator", {}, True, "no call or campaign data yet", id="campaign-not-queued"
        ),
    ],
)
def test_a_task_with_nothing_to_show_gets_a_clear_page(
    operator: str, xcoms: dict[str, Any], fuse_task: bool, says: str
) -> None:
    view = build_view(task(operator), xcoms)
    assert view == EmptyView(task(operator), fuse_task=fuse_task)
    assert says in render(view)


@pytest.mark.parametrize(
    "xcoms",
    [
        {"return_value": {"totals": "x", "calls": [["bad"]]}},
        {"return_value": {"status": ["no"], "events": "x", "queued_at": 3, "attempts": "many"}},
        {"call_id": 7, HEAD_KEY: {"count": "x"}, chunk_key(0): "not a list"},
        {HEAD_KEY: {"count": 2}, chunk_key(0): [{"seq": 0, "details": {"status": None}}, None, 5]},
        {"campaign_queued": {"rows": "many"}, chunk_key(0): [{"seq": "0"}]},
    ],
    ids=["campaign-garbage", "call-garbage", "head-garbage", "entries-garbage", "queued-garbage"],
)
def test_values_the_provider_never_writes_still_give_a_page(xcoms: dict[str, Any]) -> None:
    for operator in ("QueueCallOperator", "QueueCallsOperator", None):
        html = render(build_view(task(operator), xcoms))
        assert html.startswith("<!doctype html>") and html.endswith("</html>")


# --- escaping and headers ---------------------------------------------------------------------------


def test_hostile_values_are_escaped_everywhere_they_appear() -> None:
    where = {"dag_id": HOSTILE, "run_id": HOSTILE, "task_id": HOSTILE}
    details = {
        **call_details(HOSTILE),
        "call_id": HOSTILE,
        "events": [{"event": HOSTILE, "at": T0.isoformat()}],
        "phone_number": HOSTILE,
    }
    call = render(build_view(task(**where), {"return_value": details, "call_id": HOSTILE}))
    bad = CampaignCall(HOSTILE, 1, HOSTILE, HOSTILE, HOSTILE)  # type: ignore[arg-type]
    value = CampaignResult(rows=1, calls=(bad,)).to_xcom()
    campaign = render(build_view(task("QueueCallsOperator", **where), {"return_value": value}))
    for html in (call, campaign):
        assert "<script" not in html and "<img" not in html
        assert "&lt;script&gt;" in html
        assert re.search(r"<[a-z]+[^>]*\sonerror=", html) is None
    assert call.count("&lt;script&gt;") >= 4  # title, where, status, call id, event (number masked away)


def test_every_answer_carries_a_strict_content_security_policy() -> None:
    css_hash = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
    policy = dict(part.strip().split(" ", 1) for part in CONTENT_SECURITY_POLICY.split(";"))
    assert policy == {
        "default-src": "'none'",
        "style-src": f"'sha256-{css_hash}'",
        "img-src": "'none'",
        "base-uri": "'none'",
        "form-action": "'none'",
        "frame-ancestors": "'self'",
    }
    assert SECURITY_HEADERS["X-Content-Type-Options"] == "nosniff"
    html = render(build_view(task(), {"return_value": call_details()}))
    assert f"<style>{CSS}</style>" in html  # the stylesheet the hash allows, byte for byte
    assert "<script" not in html and " style=" not in html


# --- the route --------------------------------------------------------------------------------------


def test_the_page_path_encodes_each_part_and_matches_the_external_views_href() -> None:
    assert task_page_path("d", "manual__2026-11-30T09:00:00+00:00", "a/b", None) == (
        "fuse/tasks/d/manual__2026-11-30T09%3A00%3A00%2B00%3A00/a%2Fb/-1"
    )
    href = TASK_PAGE_HREF.format(DAG_ID="d", RUN_ID="r", TASK_ID="t", MAP_INDEX=3)
    assert href == task_page_path("d", "r", "t", 3)


def test_the_route_answers_html_with_the_security_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_fuse.plugins import pages

    ref = task()
    monkeypatch.setattr(
        pages, "_task_instance", lambda session, *where: ref if where == ("d", "r", "t", -1) else None
    )
    monkeypatch.setattr(pages, "_xcoms", lambda session, task: {"return_value": call_details()})
    found = pages.task_page("d", "r", "t", "-1", session=None)  # type: ignore[arg-type]
    assert found.status_code == 200 and "16***123" in bytes(found.body).decode()
    # The UI's Fuse tab of a task that is not mapped leaves the placeholder unfilled: the same page.
    unfilled = pages.task_page("d", "r", "t", "{MAP_INDEX}", session=None)  # type: ignore[arg-type]
    assert bytes(unfilled.body) == bytes(found.body)
    missing = pages.task_page("d", "r", "other", "-1", session=None)  # type: ignore[arg-type]
    not_an_index = pages.task_page("d", "r", "t", "<b>x</b>", session=None)  # type: ignore[arg-type]
    for refused in (missing, not_an_index):
        assert refused.status_code == 404 and "no such task instance" in bytes(refused.body).decode()
    assert "<b>" not in bytes(not_an_index.body).decode()
    for answer in (found, unfilled, missing, not_an_index):
        assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert answer.headers["content-type"].startswith("text/html")


def test_the_route_requires_airflow_login_and_dag_access() -> None:
    """Declared with requires_access_dag (GET, TASK_INSTANCE); without a token the app answers 401."""
    from fastapi.testclient import TestClient

    from airflow_provider_fuse.plugins import pages
    from airflow_provider_fuse.plugins.app import create_app

    (route,) = [r for r in pages.router.routes if getattr(r, "path", "").startswith("/tasks/")]
    guards = [d.call.__qualname__ for d in route.dependant.dependencies]  # type: ignore[attr-defined]
    assert guards[0] == "requires_access_dag.<locals>.inner"  # before the session is opened
    answer = TestClient(create_app()).get("/tasks/d/r/t/-1")
    assert answer.status_code == 401
    assert "16***" not in answer.text


def test_the_plugin_registers_the_page_as_a_task_instance_view_of_airflows_ui() -> None:
    """A relative href: Airflow's UI resolves it against [api] base_url and frames it at plugin/fuse."""
    from airflow.api_fastapi.core_api.datamodels.plugins import ExternalViewResponse

    from airflow_provider_fuse.plugins.fuse import FusePlugin

    (view,) = FusePlugin.external_views
    assert view == {
        "name": "Fuse",
        "href": TASK_PAGE_HREF,
        "destination": "task_instance",
        "url_route": "fuse",
    }
    assert ExternalViewResponse.model_validate(view).destination == "task_instance"
    assert not view["href"].startswith(("/", "http"))
