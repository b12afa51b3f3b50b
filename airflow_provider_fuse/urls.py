"""Where requests may go: the one rule for every URL the provider sends to or hands to Fuse.

A URL is accepted only in a strict form on which every parser agrees (``urllib.parse``, urllib3 under
requests, yarl under aiohttp): no user info, no backslash, no whitespace or control characters, no
percent-escapes or non-ASCII in the host, no dot segments. So the host checked here is the host the
transport connects to. Plain ``http`` is allowed only for loopback: an IP literal in 127.0.0.0/8,
``::1``, or the name ``localhost`` (the FuseSimulator); everything else must be ``https``.

Call ids are checked here too, before they become part of a URL path.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from airflow_provider_fuse import protocol
from airflow_provider_fuse.exceptions import FuseValidationError

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_SEGMENT_CHARS = r"[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2}"
_URL = re.compile(
    r"(?P<scheme>https?)://"
    rf"(?P<host>\[[0-9A-Fa-f:.]+\]|{_LABEL}(?:\.{_LABEL})*)"
    r"(?::(?P<port>[0-9]{1,5}))?"
    rf"(?P<path>(?:/(?:{_SEGMENT_CHARS})*)*)"
    rf"(?:\?(?P<query>(?:{_SEGMENT_CHARS}|[/?])*))?",
    re.IGNORECASE,
)
_CALL_ID = re.compile(protocol.CALL_ID_PATTERN)
_ALLOWED = (
    "Give an https:// URL (plain http:// only for 127.0.0.1, ::1 or localhost) without user info, "
    "spaces, backslashes or control characters."
)


@dataclass(frozen=True)
class Url:
    """A URL that passed the rule; ``str()`` gives it back exactly as it will be sent."""

    scheme: str
    host: str
    port: int | None
    path: str
    query: str | None = None

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        query = f"?{self.query}" if self.query is not None else ""
        return f"{self.scheme}://{self.host}{port}{self.path}{query}"


def is_loopback_host(host: str | None) -> bool:
    """Only an IP literal in 127.0.0.0/8, ``::1`` or exactly ``localhost``: names are not resolved."""
    name = (host or "").lower()
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name[1:-1] if name.startswith("[") and name.endswith("]") else name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        return address == ipaddress.IPv6Address("::1")
    return address in ipaddress.IPv4Network("127.0.0.0/8")


def check_url(
    value: object,
    *,
    field: str,
    allow_query: bool = False,
    error: type[FuseValidationError] = FuseValidationError,
) -> Url:
    """``value`` read as the transport will read it, or ``error`` naming ``field`` (nothing is sent).

    The message shows the value with any user info blanked out: it may hold a developer key.
    """
    if not isinstance(value, str):
        raise error(field, f"a {type(value).__name__}", _ALLOWED)
    match = _URL.fullmatch(value)
    if match is None:
        raise error(field, _shown(value), _why(value) + _ALLOWED)
    host = match["host"].lower()
    if host.startswith("[") and not _is_ipv6(host[1:-1]):
        raise error(field, _shown(value), _ALLOWED)
    port = int(match["port"]) if match["port"] else None
    if port is not None and not 0 < port < 65536:
        raise error(field, _shown(value), "A port is a number from 1 to 65535.")
    path = match["path"]
    if any(segment in (".", "..") for segment in path.split("/")):
        raise error(field, _shown(value), "The path may not hold '.' or '..' segments.")
    if match["query"] is not None and not allow_query:
        raise error(field, _shown(value), "It may not carry a query string.")
    scheme = match["scheme"].lower()
    if scheme == "http" and not is_loopback_host(host):
        raise error(
            field,
            _shown(value),
            f"Refusing plain http:// to {host}: credentials and phone numbers need https:// "
            "(http is allowed only for 127.0.0.1, ::1 or localhost, such as the FuseSimulator).",
        )
    return Url(scheme, host, port, path, match["query"])


def check_call_id(value: object, field: str = "call_id") -> str:
    """A call id that can only name one call once placed in a URL path (``..`` would climb up)."""
    text = value if isinstance(value, str) else None
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**64:
        text = str(value)  # a longer int is no id, and str() refuses ints of 4,300+ digits
    if text is None or not _CALL_ID.fullmatch(text):
        raise FuseValidationError(
            field,
            repr(text[:40]) if text is not None else f"a {type(value).__name__}",
            "Fuse call ids are 1 to 64 letters, digits, '-' or '_' (for example 4242).",
        )
    return text


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _why(value: str) -> str:
    """The first reason a URL fails the grammar, for the cases people (and attackers) write."""
    if re.search(r"[\x00-\x20\x7f-\x9f\s]", value):
        return "It holds whitespace or control characters. "
    if "\\" in value:
        return "It holds a backslash. "
    if "@" in value.split("://", 1)[-1].split("/", 1)[0]:
        return "It holds user info (name:key@): put the e-mail and developer key in the login and password. "
    return ""


def _shown(value: str) -> str:
    """The value for an error message: user info blanked out, at most 100 characters."""
    head, sep, rest = value.partition("://")
    if not sep:
        head, rest = "", value
    if "@" in rest:
        rest = "***" + rest[rest.rindex("@") :]
    return repr(f"{head}{sep}{rest}"[:100])
