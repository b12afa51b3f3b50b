"""Fuse's rules for queue and bulk_queue requests, enforced the way Fuse answers: 400 and a message.

Field names, limits and the phone number format come from :mod:`airflow_provider_fuse.protocol`.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import replace

from airflow_provider_fuse import protocol
from airflow_provider_fuse.testing.calls import DEFAULT_REATTEMPT_WAIT, CallOptions, CallSpec


class ApiError(Exception):
    """A request the simulator refuses: answered with ``status`` and ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _bad(message: str) -> ApiError:
    return ApiError(400, message)


def _field(form: Mapping[str, str], name: str) -> str | None:
    """A form field's stripped text; an empty field counts as absent."""
    value = form.get(name, "").strip()
    return value or None


def _integer(form: Mapping[str, str], name: str, bounds: tuple[int, int] | None = None) -> int | None:
    value = _field(form, name)
    if value is None:
        return None
    if not value.isdigit():
        raise _bad(f"{name} must be a whole number, got {value!r}")
    number = int(value)
    if bounds and not bounds[0] <= number <= bounds[1]:
        raise _bad(f"{name} must be between {bounds[0]} and {bounds[1]}, got {number}")
    return number


def parse_phone_number(value: str | None) -> CallSpec:
    """A destination checked against Fuse's formats: a spec still without variables and options."""
    if not value or not value.strip():
        raise _bad(f"{protocol.PHONE_NUMBER} is required")
    match = protocol.PHONE_NUMBER_PATTERN.fullmatch(value.strip())
    if match is None:
        raise _bad(
            f"{protocol.PHONE_NUMBER} is not a valid phone number: expected digits with an optional 'tel:' "
            "prefix and '+', then optional ';ani=CALLER_ID' and ';postd=DTMF'"
        )
    return CallSpec(phone_number=value.strip(), digits=match["digits"])


def parse_options(form: Mapping[str, str]) -> CallOptions:
    """The optional fields shared by queue and bulk_queue."""
    start = _integer(form, protocol.START_TIMESTAMP)
    end = _integer(form, protocol.END_TIMESTAMP)
    if start is not None and end is not None and end <= start:
        raise _bad(f"{protocol.END_TIMESTAMP} must be after {protocol.START_TIMESTAMP}")
    max_attempts = _integer(form, protocol.MAX_ATTEMPTS, protocol.MAX_ATTEMPTS_RANGE)
    reattempt_wait = _integer(form, protocol.REATTEMPT_WAIT, protocol.REATTEMPT_WAIT_RANGE)
    if (max_attempts or 1) > 1 and reattempt_wait is None:
        raise _bad(f"{protocol.MAX_ATTEMPTS} greater than 1 requires {protocol.REATTEMPT_WAIT}")
    result_url = _field(form, protocol.RESULT_URL)
    if result_url is not None and not result_url.lower().startswith(("http://", "https://")):
        raise _bad(f"{protocol.RESULT_URL} must be an http(s) URL")
    is_pci = _field(form, protocol.IS_PCI)
    if is_pci not in (None, "0", "1"):
        raise _bad(f"{protocol.IS_PCI} must be 0 or 1, got {is_pci!r}")
    return CallOptions(
        start_timestamp=start,
        end_timestamp=end,
        max_attempts=max_attempts or 1,
        reattempt_wait=DEFAULT_REATTEMPT_WAIT if reattempt_wait is None else reattempt_wait,
        result_url=result_url,
        is_pci=is_pci == "1",
    )


def parse_queue_form(
    form: Mapping[str, str],
    variables_field: str,
    variables_format: str = protocol.DEFAULT_VARIABLES_FORMAT,
) -> CallSpec:
    """A single queue request's form as a call spec, its variables read in ``variables_format``.

    Like Fuse, whatever does not look like variables in that format is ignored, not refused.
    """
    destination = parse_phone_number(form.get(protocol.PHONE_NUMBER))
    try:
        variables = protocol.parse_variables_form(form, variables_format, variables_field)
    except ValueError as exc:
        raise _bad(str(exc)) from None
    return replace(destination, variables=variables, options=parse_options(form))


def parse_bulk_form(form: Mapping[str, str]) -> list[CallSpec]:
    """A bulk_queue request's CSV rows as call specs; any bad row rejects the whole upload."""
    data = form.get(protocol.BULK_CSV_FIELD)
    if not data:
        raise _bad(f"the {protocol.BULK_CSV_FIELD!r} file is required")
    try:
        rows = protocol.parse_bulk_csv(data)
    except (ValueError, csv.Error) as exc:
        raise _bad(f"unreadable CSV: {exc}") from None
    if not rows:
        raise _bad("the CSV has no rows")
    options = parse_options(form)
    specs = []
    for number, (destination, variables) in enumerate(rows, start=1):
        try:
            spec = parse_phone_number(destination)
        except ApiError as exc:
            raise _bad(f"row {number}: {exc.message}") from None
        specs.append(replace(spec, variables=variables, options=options))
    return specs
