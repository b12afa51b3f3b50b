"""``fuse-probe``: check a Fuse account, and what Fuse really answers, before a team's first real call.

Plum does not document every detail this provider relies on (see "Fuse API assumptions" in the
README; each one lives in :mod:`airflow_provider_fuse.protocol`). Run once with the real account::

    fuse-probe --conn-id fuse_default                   # read-only: places no call
    fuse-probe --call-id 12345                          # also reads an existing call
    fuse-probe --live --application-id A --deployment-id D --phone +1... --yes-place-one-real-call
    fuse-probe ... --json probe.json                    # the report as JSON, for a bug report

Every assumption is reported as confirmed, contradicted or not checked. The exit status is 0 when
Fuse accepted the credentials; otherwise non-zero with the reason (see ``EXIT_*``). The report holds
shapes (field names and types), status words and masked numbers: never the developer key, a full
phone number or a value of Fuse's answers. ``--live`` never cancels: Fuse can only cancel a whole
deployment.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_fuse import DEFAULT_CONN_ID, protocol

if TYPE_CHECKING:
    from airflow_provider_fuse.hooks.fuse import FuseHook

CONFIRMED, CONTRADICTED, NOT_CHECKED = "confirmed", "contradicted", "not checked"
#: Exit statuses: authenticated; credentials rejected (401/403); Fuse unreachable; the connection
#: unusable as configured; Fuse answered something else (5xx, a redirect, an unreadable answer).
#: (argparse exits 2 on a bad command line.)
EXIT_OK, EXIT_REJECTED, EXIT_UNREACHABLE, EXIT_SETTINGS, EXIT_OTHER = 0, 1, 3, 4, 5
#: The variable a live probe call carries, in the connection's variables format.
PROBE_VARIABLE = {"fuse_probe": "1"}
NEVER_CANCELS = (
    "fuse-probe never cancels: Fuse can only cancel every pending call of a deployment. The probe "
    "calls ring as queued."
)


@dataclass
class Finding:
    """One point checked: an assumption (confirmed / contradicted / not checked) or a fact seen."""

    topic: str
    verdict: str
    detail: str


@dataclass
class Report:
    """What the probe found; printed as text, written as JSON with ``--json``."""

    conn_id: str
    settings: dict[str, Any] = field(default_factory=dict)
    authenticated: bool = False
    reason: str = ""
    exit_code: int = EXIT_OTHER
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, topic: str, verdict: str, detail: str) -> None:
        self.findings.append(Finding(topic, verdict, detail))

    def text(self) -> str:
        lines = [f"fuse-probe: connection {self.conn_id!r}"]
        lines += [f"  {name}: {value}" for name, value in self.settings.items()]
        lines.append(
            "Authenticated: yes"
            if self.authenticated
            else f"Authenticated: NO ({self.reason or 'not checked'})"
        )
        width = max((len(f.verdict) for f in self.findings), default=0) + 2
        lines += [f"  {f'[{f.verdict}]':<{width}} {f.topic}: {f.detail}" for f in self.findings]
        lines += [f"Note: {note}" for note in self.notes]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# --- what the probe looks at -----------------------------------------------------------------------


def shape(value: Any, depth: int = 0) -> Any:
    """A JSON value's shape: field names and type names, never a value (it may hold a number)."""
    if isinstance(value, Mapping) and depth < 4:
        return {str(key)[:40]: shape(item, depth + 1) for key, item in list(value.items())[:40]}
    if isinstance(value, list) and depth < 4:
        return [shape(value[0], depth + 1)] if value else []
    return "null" if value is None else type(value).__name__


def _masked(text: str | None) -> str:
    from airflow_provider_fuse.hooks.fuse import _fuse_text

    return _fuse_text(text or "") or ""


def _json_body(report: Report, topic: str, answer: Any) -> Any:
    """The answer's JSON, with a finding on its content type; None when it is not JSON."""
    from airflow_provider_fuse.exceptions import FuseResponseError

    content_type = answer.header("content-type") or "none"
    try:
        body = answer.json()
    except FuseResponseError:
        report.add(
            f"{topic}: JSON answers", CONTRADICTED, f"Content-Type {_masked(content_type)!r}, not JSON"
        )
        return None
    report.add(f"{topic}: JSON answers", CONFIRMED, f"Content-Type {_masked(content_type)!r}")
    return body


def _settings(report: Report, hook: FuseHook) -> None:
    from airflow_provider_fuse.phone import mask_phone

    settings = hook.settings
    name, _, domain = settings.login.partition("@")
    report.settings = {
        "base URL": settings.base_url,
        "login": f"{name[:1]}***@{domain}" if domain else mask_phone(name),
        "developer key": "set (never shown)",
        "request timeout": f"{settings.request_timeout:g} s",
        "connect timeout": f"{settings.connect_timeout:g} s",
        "retry limit": settings.retry_limit,
        "default region": settings.default_region,
        "variables field": settings.variables_field,
        "variables format": settings.variables_format,
    }


def _authenticate(report: Report, hook: FuseHook) -> bool:
    """The not-found probe: a call that cannot exist answers 404 to good credentials, 401/403 else."""
    from airflow_provider_fuse.connection import status_path
    from airflow_provider_fuse.exceptions import FuseConnectionError

    https = hook.settings.base_url.lower().startswith("https://")
    try:
        answer = hook.exchange("GET", status_path(protocol.PROBE_CALL_ID))
    except FuseConnectionError as error:
        report.reason = f"unreachable: {_masked(str(error))}"
        report.exit_code = EXIT_UNREACHABLE
        tls_failed = https and "SSL" in str(error)
        report.add(
            "TLS",
            CONTRADICTED if tls_failed else NOT_CHECKED,
            "the TLS handshake failed" if tls_failed else f"no answer from {hook.settings.base_url}",
        )
        return False
    report.add(
        "TLS",
        CONFIRMED if https else NOT_CHECKED,
        "HTTPS, certificate verified" if https else "plain http (allowed only on loopback: the simulator)",
    )
    body = _json_body(report, "not-found probe", answer)
    message = protocol.error_message(body)
    if answer.status in (401, 403):
        meaning = "credentials rejected" if answer.status == 401 else "no permission"
        report.reason = f"HTTP {answer.status}, {meaning}: {_masked(message) or 'no error message'}"
        report.exit_code = EXIT_REJECTED
        return False
    if answer.status == 404:
        report.add(
            "not-found probe",
            CONFIRMED,
            f"GET {protocol.status_path(protocol.PROBE_CALL_ID)} answered 404: credentials accepted",
        )
        report.add(
            'error body {"error": ...}',
            CONFIRMED if message is not None else CONTRADICTED,
            f"shape {shape(body)}",
        )
        report.exit_code = EXIT_OK
        return True
    if 200 <= answer.status < 300:
        report.add(
            "not-found probe",
            CONTRADICTED,
            f"call {protocol.PROBE_CALL_ID} exists (HTTP {answer.status}): credentials accepted all the same",
        )
        report.exit_code = EXIT_OK
        return True
    report.reason = f"Fuse answered HTTP {answer.status}: {_masked(message) or 'no error message'}"
    report.exit_code = EXIT_OTHER
    return False


def _read_call(report: Report, hook: FuseHook, call_id: str, topic: str) -> None:
    """A call's status answer: its shape, status word, and what its timestamps mean."""
    from airflow_provider_fuse.connection import status_path

    answer = hook.exchange("GET", status_path(call_id))
    body = _json_body(report, topic, answer)
    if answer.status != 200:
        report.add(topic, NOT_CHECKED, f"HTTP {answer.status}: {_masked(protocol.error_message(body))}")
        return
    details = protocol.parse_status_response(body)
    if details is None:
        report.add(f'{topic}: {{"call_details": {{...}}}}', CONTRADICTED, f"shape {shape(body)}")
        return
    report.add(f'{topic}: {{"call_details": {{...}}}}', CONFIRMED, f"shape {shape(details)}")
    status = str(details.get("status"))
    known = protocol.ACTIVE_STATUSES | protocol.TERMINAL_STATUSES
    report.add(
        f"{topic}: status values",
        CONFIRMED if status in known else CONTRADICTED,
        f"status {_masked(status)!r} ({'known' if status in known else 'not among ' + ', '.join(sorted(known))})",
    )
    _timestamps(report, topic, details)


def _timestamps(report: Report, topic: str, details: Mapping[str, Any]) -> None:
    """ASSUMED: ``start_timestamp``/``end_timestamp`` are the connect and disconnect times (Fuse's sample)."""
    events = {
        str(e.get("event")): str(e.get("timestamp"))
        for e in details.get("events") or ()
        if isinstance(e, Mapping)
    }
    start, end = str(details.get("start_timestamp")), str(details.get("end_timestamp"))
    if "connected" not in events:
        report.add(f"{topic}: start/end_timestamp", NOT_CHECKED, "the call has not connected yet")
        return
    same = start == events["connected"] and end == events.get("disconnected", end)
    report.add(
        f"{topic}: start/end_timestamp",
        CONFIRMED if same else CONTRADICTED,
        "the connect and disconnect times, as in Fuse's sample"
        if same
        else "not the connect/disconnect times: probably the scheduled window",
    )


def _live(report: Report, hook: FuseHook, args: argparse.Namespace) -> None:
    """One queued call and a one-row bulk upload to ``--phone``, and the shapes of the answers."""
    from airflow_provider_fuse.hooks.fuse import _multipart
    from airflow_provider_fuse.models import CallRequest
    from airflow_provider_fuse.validation import path_id

    settings = hook.settings
    app, dep = path_id("application_id", args.application_id), path_id("deployment_id", args.deployment_id)
    request = CallRequest(args.phone, variables=PROBE_VARIABLE, default_region=settings.default_region)
    report.notes.append(
        f"--live queued two calls to {request.masked_phone}: one single call, one bulk upload of one row."
    )
    report.notes.append(NEVER_CANCELS)
    form = request.to_form(settings.variables_field, settings.variables_format)
    answer = hook.exchange("POST", protocol.queue_path(app, dep), files=_multipart(form))
    body = _json_body(report, "queue answer", answer)
    call_id = None
    if 200 <= answer.status < 300:
        in_body = protocol.parse_queue_response(body, None)
        link = answer.header("link")
        call_id = protocol.parse_queue_response(body, link)
        report.add(
            'queue answer {"call_id": ...}', CONFIRMED if in_body else CONTRADICTED, f"shape {shape(body)}"
        )
        report.add(
            "queue answer Link header", CONFIRMED if link else CONTRADICTED, "present" if link else "absent"
        )
    else:
        report.add(
            "queue request", CONTRADICTED, f"HTTP {answer.status}: {_masked(protocol.error_message(body))}"
        )
    report.add(
        f"variables format {settings.variables_format!r}",
        NOT_CHECKED,
        f"Fuse does not echo variables: check that your application received {PROBE_VARIABLE} "
        "(else try another variables_format)",
    )
    csv_data = protocol.build_bulk_csv([(request.tel_uri, PROBE_VARIABLE)])
    files: dict[str, Any] = {protocol.BULK_CSV_FIELD: ("calls.csv", csv_data, "text/csv")}
    bulk = hook.exchange("POST", protocol.bulk_queue_path(app, dep), files=files)
    bulk_body = _json_body(report, "bulk_queue answer", bulk) if bulk.body.strip() else None
    ids = protocol.parse_bulk_queue_response(bulk_body)
    report.add(
        'bulk_queue answer {"call_ids": [...]}',
        CONFIRMED if ids else CONTRADICTED,
        f"HTTP {bulk.status}, shape {shape(bulk_body)}"
        + ("" if ids else ": campaigns will be queued untracked (rows 'untracked' in the result)"),
    )
    if call_id is not None:
        _read_call(report, hook, call_id, "status of the probe call")


# --- the command -----------------------------------------------------------------------------------


def probe(args: argparse.Namespace) -> Report:
    """Run the checks the arguments ask for; never raises for what Fuse answers."""
    from airflow_provider_fuse.exceptions import FuseError, FuseValidationError
    from airflow_provider_fuse.hooks.fuse import FuseHook

    report = Report(args.conn_id)
    hook = FuseHook(args.conn_id)
    try:
        _settings(report, hook)
    except FuseValidationError as error:
        report.reason, report.exit_code = f"connection unusable: {error}", EXIT_SETTINGS
        return report
    if not _authenticate(report, hook):
        return report
    report.authenticated = True
    try:
        if args.call_id:
            _read_call(report, hook, args.call_id, f"call {args.call_id}")
        elif not args.live:
            report.add("status answer", NOT_CHECKED, "give --call-id ID of an existing call")
        if args.live:
            _live(report, hook, args)
        else:
            report.add("queue and bulk_queue answers, variables format", NOT_CHECKED, "give --live ...")
    except FuseError as error:  # unreachable midway, a bad --phone: the report so far still stands
        report.notes.append(f"Stopped: {_masked(str(error))}")
    return report


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fuse-probe",
        description="Check a Fuse account and the Fuse API assumptions of airflow-provider-fuse.",
    )
    parser.add_argument("--conn-id", default=DEFAULT_CONN_ID, help="the Airflow connection (type fuse)")
    parser.add_argument("--call-id", help="also read this existing call and report its shape and status")
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON (numbers masked)")
    live = parser.add_argument_group("placing real calls (--live)")
    live.add_argument("--live", action="store_true", help="queue one call and a one-row bulk upload")
    live.add_argument("--application-id")
    live.add_argument("--deployment-id")
    live.add_argument("--phone", help="the number to call (yours)")
    live.add_argument("--yes-place-one-real-call", action="store_true", help="required with --live")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.live:
        missing = [
            option
            for option, value in (
                ("--application-id", args.application_id),
                ("--deployment-id", args.deployment_id),
                ("--phone", args.phone),
                ("--yes-place-one-real-call", args.yes_place_one_real_call),
            )
            if not value
        ]
        if missing:
            parser.error(f"--live places real calls and needs {', '.join(missing)}")
    report = probe(args)
    print(report.text())
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(report.to_json(), out, indent=2)
            out.write("\n")
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
