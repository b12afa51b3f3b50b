"""The Fuse wire protocol: paths, form fields, response shapes and statuses.

This is the ONE place that knows how Fuse speaks. The hook uses it to talk to Fuse and the
simulator uses it to answer, so the two cannot drift apart. Every detail that Plum does not
document publicly is marked ``ASSUMED`` here and listed in the README; change it here only.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode

DEFAULT_BASE_URL = "https://fuse.plumvoice.com/api"

# Form fields of the queue and bulk_queue requests (documented).
PHONE_NUMBER = "phone_number"
START_TIMESTAMP = "start_timestamp"
END_TIMESTAMP = "end_timestamp"
MAX_ATTEMPTS = "max_attempts"
REATTEMPT_WAIT = "reattempt_wait"
RESULT_URL = "result_url"
IS_PCI = "is_pci"
BULK_CSV_FIELD = "csv"

# ASSUMED: the form field carrying the application variables (a JSON object). Plum's older outbound
# API calls it ``call_parameters``; the connection extra ``variables_field`` overrides it.
DEFAULT_VARIABLES_FIELD = "call_parameters"

# ASSUMED: how a single queue request carries the variables; no Fuse page says (the connection extra
# ``variables_format`` picks one, see :func:`variables_form`). ``json``: one field holding a JSON
# object; ``fields``: each variable its own form field; ``bracketed``: a PHP-style form array
# ``field[name]=value`` (Plum's survey product, ``metadata``); ``query``: one field holding
# ``name=value&...`` URL-encoded (Plum's older outbound API, ``call_parameters``).
VARIABLES_JSON, VARIABLES_FIELDS, VARIABLES_BRACKETED, VARIABLES_QUERY = (
    "json",
    "fields",
    "bracketed",
    "query",
)
VARIABLES_FORMATS = (VARIABLES_JSON, VARIABLES_FIELDS, VARIABLES_BRACKETED, VARIABLES_QUERY)
DEFAULT_VARIABLES_FORMAT = VARIABLES_JSON
#: ASSUMED: Plum's older outbound API takes ``call_parameters`` as a string of at most 255 characters.
MAX_QUERY_VARIABLES_CHARS = 255

# ASSUMED: the bulk CSV has a header row; this column holds the phone number and every other
# column becomes an application variable of that name.
BULK_DESTINATION_COLUMN = "destination"

#: Every field of a queue or bulk_queue request, in lower case. No application variable may take one of
#: these names (nor the variables field's): in the bulk CSV a ``destination`` variable becomes a second
#: destination column, and Fuse would dial a number that skipped every check.
REQUEST_FIELDS = frozenset(
    {
        PHONE_NUMBER,
        BULK_DESTINATION_COLUMN,
        START_TIMESTAMP,
        END_TIMESTAMP,
        MAX_ATTEMPTS,
        REATTEMPT_WAIT,
        RESULT_URL,
        IS_PCI,
        BULK_CSV_FIELD,
    }
)

# The phone_number formats Fuse accepts (documented): digits, an optional ``tel:`` prefix and ``+``,
# then an optional ``;ani=DIGITS`` (caller id, ``+`` allowed) and ``;postd=DTMF`` in the order of
# Plum's example.
# ASSUMED: 3 to 15 digits (E.164's maximum) and DTMF made of 0-9 * # w W and ','.
DTMF = r"[0-9*#wW,]+"
PHONE_NUMBER_PATTERN = re.compile(
    rf"(?:tel:)?\+?(?P<digits>[0-9]{{3,15}})(?:;ani=(?P<ani>\+?[0-9]+))?(?:;postd=(?P<postd>{DTMF}))?",
    re.IGNORECASE,
)

# Limits of the queue request (documented).
MAX_ATTEMPTS_RANGE = (1, 10)
REATTEMPT_WAIT_RANGE = (60, 86_400)

# Call statuses. The progression queued -> dialing -> connected -> completed is documented; the
# other terminal outcomes are documented for Plum's sibling product and ASSUMED here.
QUEUED, DIALING, CONNECTED, COMPLETED = "queued", "dialing", "connected", "completed"
CANCELED, FAILED, REJECTED = "canceled", "failed", "rejected"  # ASSUMED
ACTIVE_STATUSES = frozenset({QUEUED, DIALING, CONNECTED})
SUCCESS_STATUSES = frozenset({COMPLETED})
FAILURE_STATUSES = frozenset({CANCELED, FAILED, REJECTED})  # ASSUMED
TERMINAL_STATUSES = SUCCESS_STATUSES | FAILURE_STATUSES


# ASSUMED: call ids are numbers or short tokens, 1 to 64 ASCII letters, digits, '-' or '_'. Anything else is
# refused before it reaches a URL path (``..`` would turn ``/outbound/..`` into ``/``).
CALL_ID_PATTERN = r"[A-Za-z0-9_-]{1,64}"

# ASSUMED: asking for the status of call id 0 answers 404 to good credentials and 401/403 to bad
# ones, which lets a connection test prove the credentials without placing a call.
PROBE_CALL_ID = "0"


def variables_form(
    variables: Mapping[str, Any], variables_format: str, variables_field: str
) -> dict[str, str]:
    """The form fields carrying ``variables`` in ``variables_format`` (ASSUMED, see above); {} for none.

    Outside ``json`` a value that is not text travels as its JSON text (``3``, ``true``), as in the CSV.
    """
    if not variables:
        return {}
    if variables_format == VARIABLES_JSON:
        return {variables_field: json.dumps(dict(variables), separators=(",", ":"))}
    texts = {name: variable_text(value) for name, value in variables.items()}
    if variables_format == VARIABLES_FIELDS:
        return texts
    if variables_format == VARIABLES_BRACKETED:
        return {f"{variables_field}[{name}]": value for name, value in texts.items()}
    if variables_format == VARIABLES_QUERY:
        return {variables_field: urlencode(list(texts.items()))}
    raise ValueError(f"unknown variables format {variables_format!r}; expected one of {VARIABLES_FORMATS}")


def parse_variables_form(
    form: Mapping[str, str], variables_format: str, variables_field: str
) -> dict[str, Any]:
    """The variables a queue request's form carries in ``variables_format``; the simulator's reading.

    ValueError when the ``json`` field is not a JSON object.
    """
    if variables_format == VARIABLES_FIELDS:
        return {name: value for name, value in form.items() if name.strip().lower() not in REQUEST_FIELDS}
    if variables_format == VARIABLES_BRACKETED:
        pattern = re.compile(re.escape(variables_field) + r"\[(.+)\]")
        return {m[1]: value for name, value in form.items() if (m := pattern.fullmatch(name))}
    raw = (form.get(variables_field) or "").strip()
    if not raw:
        return {}
    if variables_format == VARIABLES_QUERY:
        return dict(parse_qsl(raw, keep_blank_values=True))
    try:
        variables = json.loads(raw)
    except ValueError:
        variables = None
    if not isinstance(variables, dict):
        raise ValueError(f"{variables_field} must be a JSON object of variable names and values")
    return variables


def queue_path(application_id: int | str, deployment_id: int | str) -> str:
    return f"/apps/{application_id}/{deployment_id}/queue"


def bulk_queue_path(application_id: int | str, deployment_id: int | str) -> str:
    return f"/apps/{application_id}/{deployment_id}/bulk_queue"


def cancel_path(application_id: int | str, deployment_id: int | str) -> str:
    return f"/apps/{application_id}/{deployment_id}/cancel"


def status_path(call_id: int | str) -> str:
    return f"/outbound/{call_id}"


def error_body(message: str) -> dict[str, str]:
    """Fuse's error shape (documented): ``{"error": "human readable message"}``."""
    return {"error": message}


def error_message(body: Any) -> str | None:
    """Fuse's own message from an error body, if it has one."""
    if isinstance(body, Mapping) and isinstance(body.get("error"), str):
        return str(body["error"])
    return None


def queue_response(call_id: str) -> dict[str, str]:
    """ASSUMED body of a successful queue request: ``{"call_id": ...}``."""
    return {"call_id": call_id}


def bulk_success_only() -> dict[str, bool]:
    """The answer of Plum's survey product to a bulk upload, and maybe of Fuse: ``{"success": true}``."""
    return {"success": True}


def answer_refuses(body: Any) -> bool:
    """Whether a 2xx answer's body still says the request failed (``{"error": ...}``, ``success: false``)."""
    return isinstance(body, Mapping) and (error_message(body) is not None or body.get("success") is False)


# ASSUMED: Fuse answers JSON to ``Accept: application/json`` (documented) and XML otherwise; an answer
# whose Content-Type names XML or HTML (a proxy's page, a login page) is refused, never parsed.
UNREADABLE_CONTENT_TYPES = ("xml", "html")


def unreadable_content_type(content_type: str | None) -> bool:
    """Whether an answer's Content-Type is one this provider refuses to read as JSON."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return any(kind in media for kind in UNREADABLE_CONTENT_TYPES)


def parse_queue_response(body: Any, link_header: str | None) -> str | None:
    """The new call's id: ASSUMED ``{"call_id": ...}``, else the last segment of the ``Link`` URI."""
    if isinstance(body, Mapping):
        call_id = body.get("call_id")
        if isinstance(call_id, (str, int)) and not isinstance(call_id, bool) and str(call_id).strip():
            return str(call_id).strip()
    if link_header:
        uri = link_header.split(";", 1)[0].strip().strip("<>").rstrip("/")
        last = uri.rsplit("/", 1)[-1]
        if last:
            return last
    return None


def link_header(base_url: str, call_id: str) -> str:
    """The ``Link`` header of a queue response, pointing at the call's status URI (documented)."""
    return f"<{base_url.rstrip('/')}{status_path(call_id)}>"


def bulk_queue_response(call_ids: list[str]) -> dict[str, list[str]]:
    """ASSUMED body of a successful bulk_queue request: ``{"call_ids": [...]}`` in row order."""
    return {"call_ids": call_ids}


def parse_bulk_queue_response(body: Any) -> list[str] | None:
    """The queued calls' ids in row order, or None when the body does not have the ASSUMED shape."""
    if isinstance(body, Mapping) and isinstance(body.get("call_ids"), list):
        ids = body["call_ids"]
        if all(isinstance(i, (str, int)) and not isinstance(i, bool) for i in ids):
            return [str(i) for i in ids]
    return None


def build_bulk_csv(rows: Iterable[tuple[str, Mapping[str, Any]]]) -> bytes:
    """The bulk_queue CSV (ASSUMED layout) from ``(tel_uri, variables)`` rows."""
    rows = list(rows)
    columns: list[str] = []
    for _, variables in rows:
        columns.extend(k for k in variables if k not in columns)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([BULK_DESTINATION_COLUMN, *columns])
    for destination, variables in rows:
        writer.writerow([destination, *(variable_text(variables.get(c)) for c in columns)])
    return out.getvalue().encode()


def parse_bulk_csv(data: bytes | str) -> list[tuple[str, dict[str, str]]]:
    """Rows of a bulk_queue CSV as ``(destination, variables)``; the simulator's reading of it."""
    text = data.decode() if isinstance(data, bytes) else data
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or BULK_DESTINATION_COLUMN not in reader.fieldnames:
        raise ValueError(f"the CSV needs a header row with a {BULK_DESTINATION_COLUMN!r} column")
    rows = []
    for row in reader:
        destination = (row.pop(BULK_DESTINATION_COLUMN) or "").strip()
        rows.append((destination, {k: v for k, v in row.items() if k is not None and v not in (None, "")}))
    return rows


def variable_text(value: Any) -> str:
    """A variable's value as form or CSV text: text as is, anything else as JSON (None: empty)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def status_response(call_details: Mapping[str, Any]) -> dict[str, Any]:
    """The status body (documented): ``{"call_details": {...}}``."""
    return {"call_details": dict(call_details)}


def call_details(
    *,
    status: str,
    phone_digits: str,
    events: Sequence[tuple[str, int]],
    attempts: int,
    max_attempts: int,
    reattempt_wait: int,
    queued_timestamp: int,
    start_timestamp: int,
    end_timestamp: int,
    duration: int,
) -> dict[str, Any]:
    """A ``call_details`` object with the types of Fuse's documented sample.

    Counts and timestamps are numeric strings, ``duration`` and event timestamps are integers and the
    dialled digits sit inside literal single quotes. ``start_timestamp``/``end_timestamp`` are when the
    conversation began and ended (as in the sample); ASSUMED ``"0"`` before that has happened.
    """
    return {
        "max_attempts": str(max_attempts),
        "attempts": str(attempts),
        "events": [{"event": name, "timestamp": int(at)} for name, at in events],
        "phone_number": f"'{phone_digits}'",
        "status": status,
        "queued_timestamp": str(queued_timestamp),
        "start_timestamp": str(start_timestamp),
        "end_timestamp": str(end_timestamp),
        "reattempt_wait": str(reattempt_wait),
        "duration": int(duration),
    }


def parse_status_response(body: Any) -> Mapping[str, Any] | None:
    """The ``call_details`` object of a status body, or None when it is missing."""
    if isinstance(body, Mapping) and isinstance(body.get("call_details"), Mapping):
        return body["call_details"]
    return None


# ASSUMED: how Fuse POSTs a call's final details to ``result_url``. Fuse says only that it POSTs the
# ``call_details``; the provider reads JSON (the status answer's ``{"call_details": {...}}`` or the bare
# object) and form-encoded bodies (one field per call_details key, ``events`` as JSON text, or a single
# ``call_details`` field holding the JSON object). Any other Content-Type is refused; a body without one
# is read as JSON when it starts with ``{``, else as a form. The call id is ASSUMED optional: the
# documented ``call_details`` sample has none; ``call_id`` beside or inside ``call_details`` is read.
CALLBACK_JSON, CALLBACK_FORM = "json", "form"
CALLBACK_FIELD_CALL_ID = "call_id"
#: Largest callback body read (the documented call_details sample is under 1 KB).
MAX_CALLBACK_BYTES = 64 * 1024


def callback_body_kind(content_type: str | None, body: bytes) -> str | None:
    """``"json"``, ``"form"``, or None for a Content-Type a callback never has (see above)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if not media:
        return CALLBACK_JSON if body.lstrip().startswith(b"{") else CALLBACK_FORM
    if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
        return CALLBACK_JSON
    if media == "application/x-www-form-urlencoded":
        return CALLBACK_FORM
    return None


def parse_result_callback(body: bytes, content_type: str | None) -> Mapping[str, Any] | None:
    """A ``result_url`` callback's ``call_details`` (with ``call_id`` when one was sent), or None when
    the body is not one: another Content-Type, unreadable, or no ``status``. See the ASSUMED note above.
    """
    kind = callback_body_kind(content_type, body)
    if kind is None:
        return None
    try:
        text = body.decode("utf-8")
        data: Any = json.loads(text) if kind == CALLBACK_JSON else _callback_form(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(data, Mapping):
        return None
    details = parse_status_response(data) or data
    if CALLBACK_FIELD_CALL_ID in data and CALLBACK_FIELD_CALL_ID not in details:
        details = {**details, CALLBACK_FIELD_CALL_ID: data[CALLBACK_FIELD_CALL_ID]}
    return details if isinstance(details.get("status"), str) else None


def _callback_form(text: str) -> dict[str, Any]:
    """A form-encoded callback as call_details; ValueError when it is no form."""
    form: dict[str, Any] = dict(
        parse_qsl(text, keep_blank_values=True, strict_parsing=True, max_num_fields=200)
    )
    if set(form) == {"call_details"}:
        return {"call_details": json.loads(form["call_details"])}
    if isinstance(form.get("events"), str):
        form["events"] = json.loads(form["events"])
    return form
