"""The HTML of the call and campaign pages: server-rendered, every value escaped, no script.

The one stylesheet is inline and allowed by its hash in :data:`CONTENT_SECURITY_POLICY`, so the page
loads nothing, runs nothing and posts nothing; the chart is inline SVG.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from html import escape

from airflow_provider_fuse.campaign import CampaignCall
from airflow_provider_fuse.models import CallStatus
from airflow_provider_fuse.phone import mask_phone
from airflow_provider_fuse.plugins.page_data import CallView, CampaignView, EmptyView, TaskRef, View

#: Rows not reached listed on the page (the rest are counted; the result file has them all).
MAX_ROWS_SHOWN = 1_000

CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:0;padding:1.5rem 2rem;color:#1f2933;background:#fff}
h1{font-size:1.5rem;margin:.2rem 0 1rem}h2{font-size:1.1rem;margin:1.6rem 0 .6rem}
.where{color:#52606d;margin:0;font-size:.9rem;word-break:break-all}
dl{display:grid;grid-template-columns:max-content auto;gap:.3rem 1.2rem;margin:0}
dt{color:#52606d}dd{margin:0;font-weight:600}
table{border-collapse:collapse}th,td{text-align:left;padding:.25rem .9rem .25rem 0;border-bottom:1px solid #e4e7eb}
td.n,th.n{text-align:right}
ol.timeline{list-style:none;padding:0;margin:0;border-left:3px solid #9fb3c8}
ol.timeline li{padding:.2rem 0 .2rem .8rem}time{color:#52606d;font-variant-numeric:tabular-nums;margin-right:.8rem}
.status{padding:.05rem .45rem;border-radius:.6rem;background:#e4e7eb}
.status.ok{background:#c6f7e2}.status.bad{background:#ffd8d8}
.note{color:#52606d}svg{max-width:100%;height:auto}
""".strip()
_CSS_HASH = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
#: Nothing but the inline stylesheet; framed only by Airflow's own UI (the external view).
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; img-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'self'"
)
#: Every page answer carries these (see ``pages.py``).
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def render(view: View) -> str:
    """The whole page of ``view``."""
    if isinstance(view, CallView):
        return _call_page(view)
    if isinstance(view, CampaignView):
        return _campaign_page(view)
    return _empty_page(view)


def missing_page(dag_id: str, run_id: str, task_id: str, map_index: str) -> str:
    """The page of a task instance the database does not have (a wrong link, a deleted run)."""
    where = f"DAG {dag_id} · run {run_id} · task {task_id} [{map_index}]"
    body = "<p>Airflow has no such task instance: the run may have been deleted, or the link is wrong.</p>"
    return _document("No such task instance", where, body)


# --- pages ------------------------------------------------------------------------------------------


def _call_page(view: CallView) -> str:
    attempts = _of(view.attempts, view.max_attempts)
    facts = [
        ("Number", escape(view.phone or "unknown")),
        ("Status", _status(view.status) if view.status else "not known yet"),
        ("Attempts", attempts),
        ("Duration", _duration(view.duration)),
        ("Call id", escape(view.call_id or "not known")),
        ("Task state", _state(view.task)),
    ]
    body = _facts(facts)
    if not view.source:
        body += _note("Fuse has not reported this call's outcome yet: reload the page later.")
    else:
        body += _note(f"Details from the {view.source}.")
    body += "<h2>Timeline</h2>"
    if view.timeline:
        items = "".join(
            f'<li><time datetime="{escape(e.at.isoformat())}">{escape(_time(e.at))}</time>{escape(e.label)}</li>'
            for e in view.timeline
        )
        body += f'<ol class="timeline">{items}</ol>'
    else:
        body += _note("No timestamped event recorded yet.")
    title = f"Fuse call {view.call_id}" if view.call_id else "Fuse call"
    return _document(title, _task_where(view.task), body)


def _campaign_page(view: CampaignView) -> str:
    result = view.result
    if result is None:
        body = _facts([("Rows queued", _count(view.queued_rows)), ("Task state", _state(view.task))])
        body += _note("The campaign has not concluded: its totals appear here when the task ends.")
    else:
        body = _facts(
            [
                ("Rows", _count(result.rows)),
                ("Calls", _count(result.call_count)),
                ("Completed", escape(f"{result.completed_ratio:.1%}")),
                ("Rows skipped", _count(result.skipped_count)),
                ("Task state", _state(view.task)),
            ]
        )
        body += "<h2>Calls by status</h2>" + _totals(result.totals)
    body += "<h2>Calls ended over time</h2>" + _ended_chart(view.ended)
    if result is not None:
        body += "<h2>Rows not reached</h2>" + _not_reached(result.not_reached, result.truncated)
    return _document("Fuse campaign", _task_where(view.task), body)


def _empty_page(view: EmptyView) -> str:
    if view.fuse_task:
        text = "This Fuse task has no call or campaign data yet: reload the page once it has queued."
    else:
        text = "This task is not a Fuse call or campaign task: there is nothing to show here."
    return _document("Fuse", _task_where(view.task), f"<p>{escape(text)}</p>")


# --- parts ------------------------------------------------------------------------------------------


def _document(title: str, where: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>"
        f'<body><header><p class="where">{escape(where)}</p><h1>{escape(title)}</h1></header>'
        f"<main>{body}</main></body></html>"
    )


def _task_where(task: TaskRef) -> str:
    index = f" [{task.map_index}]" if task.map_index >= 0 else ""
    return f"DAG {task.dag_id} · run {task.run_id} · task {task.task_id}{index}"


def _state(task: TaskRef) -> str:
    return escape(task.state or "none")


def _facts(facts: Iterable[tuple[str, str]]) -> str:
    """A definition list of ``(name, value)``, each value already escaped HTML."""
    rows = "".join(f"<dt>{escape(name)}</dt><dd>{value}</dd>" for name, value in facts)
    return f"<dl>{rows}</dl>"


def _note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def _status(status: str) -> str:
    """A status as a badge (already escaped)."""
    kind = " ok" if CallStatus.succeeded(status) else " bad" if CallStatus.is_terminal(status) else ""
    return f'<span class="status{kind}">{escape(status)}</span>'


def _of(done: int | None, most: int | None) -> str:
    if done is None:
        return "unknown"
    return escape(f"{done} of {most}" if most is not None else str(done))


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return "unknown"
    minutes, rest = divmod(max(seconds, 0), 60)
    return escape(f"{minutes} min {rest} s" if minutes else f"{rest} s")


def _count(value: int | None) -> str:
    return "unknown" if value is None else escape(f"{value:,}")


def _time(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _totals(totals: dict[str, int]) -> str:
    rows = "".join(
        f'<tr><td>{_status(status)}</td><td class="n">{count:,}</td></tr>'
        for status, count in sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    )
    return (
        f'<table><thead><tr><th>Status</th><th class="n">Calls</th></tr></thead><tbody>{rows}</tbody></table>'
    )


def _not_reached(calls: Sequence[CampaignCall], truncated: bool) -> str:
    if not calls:
        return _note("Every tracked call listed was reached.")
    rows = "".join(
        f'<tr><td class="n">{call.row}</td><td>{escape(mask_phone(call.phone) if call.phone else "")}</td>'
        f'<td>{_status(call.status)}</td><td class="n">{escape("" if call.attempts is None else str(call.attempts))}</td>'
        f"<td>{escape(call.call_id or '')}</td></tr>"
        for call in calls[:MAX_ROWS_SHOWN]
    )
    html = (
        '<table><thead><tr><th class="n">Row</th><th>Number</th><th>Status</th><th class="n">Attempts</th>'
        f"<th>Call id</th></tr></thead><tbody>{rows}</tbody></table>"
    )
    if len(calls) > MAX_ROWS_SHOWN:
        html += _note(f"The first {MAX_ROWS_SHOWN:,} of {len(calls):,} rows not reached.")
    if truncated:
        html += _note("The task's result lists only some calls: the result file holds every row.")
    return html


def _ended_chart(ended: Sequence[datetime], width: int = 640, height: int = 220) -> str:
    """How many calls had ended at each moment: a step line from the first end to the last."""
    if not ended:
        return _note("No call end was reported by a callback yet (the chart is drawn from Fuse's callbacks).")
    left, right, top, bottom = 48, 16, 12, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    start, end = ended[0], ended[-1]
    span = max((end - start).total_seconds(), 1.0)
    total = len(ended)

    def x(at: datetime) -> float:
        return left + plot_w * (at - start).total_seconds() / span

    def y(count: int) -> float:
        return top + plot_h * (1 - count / total)

    points = [f"{left:.1f},{y(0):.1f}"]
    for count, at in enumerate(ended, start=1):
        points += [f"{x(at):.1f},{y(count - 1):.1f}", f"{x(at):.1f},{y(count):.1f}"]
    label = f"{total:,} calls ended between {_time(start)} and {_time(end)}"
    base = top + plot_h
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{escape(label)}"><title>{escape(label)}</title>'
        f'<line x1="{left}" y1="{base}" x2="{width - right}" y2="{base}" stroke="#9fb3c8"/>'
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{base}" stroke="#9fb3c8"/>'
        f'<polyline fill="none" stroke="#2680c2" stroke-width="2" points="{" ".join(points)}"/>'
        f'<text x="{left - 6}" y="{top + 10}" text-anchor="end" font-size="12" fill="#52606d">{total:,}</text>'
        f'<text x="{left - 6}" y="{base}" text-anchor="end" font-size="12" fill="#52606d">0</text>'
        f'<text x="{left}" y="{height - 12}" font-size="12" fill="#52606d">{escape(_time(start))}</text>'
        f'<text x="{width - right}" y="{height - 12}" text-anchor="end" font-size="12" fill="#52606d">'
        f"{escape(_time(end))}</text></svg>"
    )
