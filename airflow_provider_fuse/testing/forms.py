"""Reading request bodies the way Fuse accepts them: multipart/form-data or urlencoded forms.

Multipart is parsed with :mod:`email` (the ``cgi`` module is gone in Python 3.13). File fields, such as
bulk_queue's ``csv``, are decoded to text like any other field.
"""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from urllib.parse import parse_qsl


def parse_form(content_type: str | None, body: bytes) -> dict[str, str]:
    """The form fields of a request body (first value of each name); ValueError when unreadable."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if not body and media_type in ("", "multipart/form-data", "application/x-www-form-urlencoded"):
        return {}
    if media_type == "application/x-www-form-urlencoded":
        fields = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        return {name: value for name, value in reversed(fields)}
    if media_type == "multipart/form-data":
        return _parse_multipart(content_type or "", body)
    raise ValueError(
        f"unsupported content type {media_type or 'none'!r}: send multipart/form-data "
        "or application/x-www-form-urlencoded"
    )


def _parse_multipart(content_type: str, body: bytes) -> dict[str, str]:
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart() or message.defects:
        raise ValueError("malformed multipart/form-data body")
    form: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        text = payload.decode(part.get_content_charset() or "utf-8") if isinstance(payload, bytes) else ""
        form.setdefault(name, text)
    return form
