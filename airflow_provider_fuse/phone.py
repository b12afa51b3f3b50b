"""Phone numbers: parsing Fuse's ``tel:`` URIs, normalising to E.164, and masking for logs.

Masking (:func:`mask_phone`) hides at least half of a number's digits, shows at most 4 at each end
(the end gets the larger share), and hides numbers of fewer than 8 digits entirely, so that a short
number leaves as many candidates as a long one: ``+16175551234`` -> ``+16***234``, the 9-digit
``+298212345`` -> ``+29***45``, a 15-digit number -> 3 and 4 digits.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from airflow_provider_fuse import protocol
from airflow_provider_fuse.exceptions import FuseValidationError

_CALLER_ID_DIGITS = re.compile(r"^\+?[0-9]{3,15}$")


class TelUri(NamedTuple):
    """A destination split into its parts: ``tel:NUMBER;ani=CALLER_ID;postd=DTMF``."""

    number: str
    caller_id: str | None = None
    post_dial: str | None = None

    def __repr__(self) -> str:  # a repr reaches logs and errors: numbers masked, post-dial (a PIN?) hidden
        caller_id = mask_phone(self.caller_id) if self.caller_id else None
        post_dial = "***" if self.post_dial else None
        return f"TelUri(number={mask_phone(self.number)!r}, caller_id={caller_id!r}, post_dial={post_dial!r})"


def split_tel_uri(value: str) -> TelUri:
    """Split a destination as Fuse accepts it; unknown ``;name=value`` parameters are an error."""
    text = value.strip()
    if text[:4].lower() == "tel:":
        text = text[4:]
    number, *params = text.split(";")
    found: dict[str, str] = {}
    for param in params:
        name, sep, param_value = param.partition("=")
        name = name.strip().lower()
        if not sep or name not in ("ani", "postd") or name in found:
            raise FuseValidationError(
                "phone_number",
                mask_phone(value),
                "Only ';ani=CALLER_ID' and ';postd=DTMF' may follow the number, each at most once.",
            )
        found[name] = param_value.strip()
    return TelUri(number.strip(), found.get("ani"), found.get("postd"))


def to_e164(value: str, *, field: str = "phone_number", region: str = "US") -> str:
    """Normalise a callable number to E.164, or raise FuseValidationError naming ``field``."""
    import phonenumbers

    cleaned = value.strip()
    allowed = (
        "Give a valid number in E.164 (+16175551234), as national digits of region "
        f"{region!r}, or as a tel: URI."
    )
    if not cleaned or not re.fullmatch(r"[0-9+()\-. ]+", cleaned):
        raise FuseValidationError(field, mask_phone(value), allowed)
    try:
        parsed = phonenumbers.parse(cleaned, region.upper())
    except phonenumbers.NumberParseException:
        raise FuseValidationError(field, mask_phone(value), allowed) from None
    if not phonenumbers.is_valid_number(parsed):
        raise FuseValidationError(field, mask_phone(value), allowed)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalise_caller_id(value: str, *, region: str = "US") -> str:
    """A caller id (ANI) as E.164 when it is a valid number, else as the plain digits given."""
    cleaned = re.sub(r"[\s().\-]", "", value)
    if not _CALLER_ID_DIGITS.fullmatch(cleaned):
        raise FuseValidationError(
            "caller_id", mask_phone(value), "A caller id is a phone number or 3 to 15 digits."
        )
    try:
        return to_e164(cleaned, field="caller_id", region=region)
    except FuseValidationError:
        return cleaned


def check_post_dial(value: str) -> str:
    """Post-dial digits (DTMF) are sent after the call connects."""
    cleaned = value.strip()
    if not re.fullmatch(protocol.DTMF, cleaned):
        raise FuseValidationError(
            "post_dial", "*** (hidden)", "Post-dial digits may hold only 0-9, *, #, w, W and ','."
        )
    return cleaned


#: Numbers with fewer digits are masked entirely; longer ones show at most half their digits.
MIN_DIGITS_TO_SHOW_ANY = 8
MAX_DIGITS_SHOWN_AT_AN_END = 4
_MASKED = re.compile(r"\+?[0-9]{0,4}\*\*\*[0-9]{0,4}")


def mask_phone(value: object) -> str:
    """``+16175551234`` -> ``+16***234``: enough to recognise a number, not to dial or guess it.

    At least half the digits are hidden (see the module docstring). Anything after the number
    (``;ani=``, ``;postd=`` which may carry a PIN) is dropped.
    """
    text = str(value).strip().strip("'")
    if text[:4].lower() == "tel:":
        text = text[4:]
    text = text.split(";", 1)[0].strip()
    if _MASKED.fullmatch(text):  # read back from XCom or an event: masking it again would lose it
        return text
    plus = "+" if text.startswith("+") else ""
    digits = re.sub(r"[^0-9]", "", text)
    if len(digits) < MIN_DIGITS_TO_SHOW_ANY:
        return plus + "***"
    shown = min(len(digits) // 2, 2 * MAX_DIGITS_SHOWN_AT_AN_END)
    tail = min((shown + 1) // 2, MAX_DIGITS_SHOWN_AT_AN_END)
    return f"{plus}{digits[: shown - tail]}***{digits[-tail:]}"


def time_zones(e164: str) -> tuple[str, ...]:
    """The IANA zones a number may ring in, per phonenumbers' data; empty when unknown."""
    import phonenumbers
    from phonenumbers import timezone

    zones = timezone.time_zones_for_number(phonenumbers.parse(e164))
    return tuple(z for z in zones if z != timezone.UNKNOWN_TIMEZONE)
