"""Reading SMSBao request parameters exactly as real clients send them.

Query string and form body are both read; a key in both takes the body's value
(some clients put ``u,p,m`` in the URL and ``c`` in the body). Values are decoded
from bytes strictly as UTF-8. A key repeated with different values in one source
is ambiguous, and ambiguity must never guess which number to charge: answer -1.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from starlette.requests import Request
from starlette.types import Receive, Scope

from smsgate import errors
from smsgate.core.accounts import IPNetwork, ip_allowed

MAX_BODY_BYTES = 64 * 1024  # 99 numbers and 500 characters fit many times over
FORM_TYPES = ("", "application/x-www-form-urlencoded")


def parse_urlencoded(raw: bytes) -> dict[str, str]:
    """``a=1&b=2`` to a dict; ``+`` is a space; bad UTF-8 or conflicting repeats give -1."""
    values: dict[str, str] = {}
    for pair in raw.split(b"&"):
        if not pair:
            continue
        key_raw, _, value_raw = pair.partition(b"=")
        key, value = _decode(key_raw), _decode(value_raw)
        if key in values and values[key] != value:
            raise errors.Rejected(errors.PARAMS_INCOMPLETE, f"parameter {key!r} given twice")
        values[key] = value
    return values


# Double-encoded content: once decoded, it is still nothing but ASCII and escapes (at
# least one of a non-ASCII byte, as Chinese content always has), every `%` in an escape.
# Text with any non-ASCII character was decoded already: a link in it stays as sent.
_ASCII_OR_ESCAPE = r"(?:[\x00-\x24\x26-\x7f]|%[0-9A-Fa-f]{2})*"
_STILL_ENCODED = re.compile(f"^{_ASCII_OR_ESCAPE}%[89A-Fa-f][0-9A-Fa-f]{_ASCII_OR_ESCAPE}$")


def decode_content(c: str) -> str:
    """Undo a second URL encoding that some clients apply to `c` (protocol.md).

    The second decode keeps `+` as it is: a client that encoded twice sent a real `+`
    as %2B, and a space as %20 or %2520.
    """
    if not _STILL_ENCODED.match(c):
        return c
    try:
        return unquote_to_bytes(c).decode("utf-8")
    except UnicodeDecodeError:
        return c


def _decode(raw: bytes) -> str:
    try:
        if b"%" not in raw:  # most keys and many values: nothing to unquote
            return raw.replace(b"+", b" ").decode("utf-8")
        return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        raise errors.Rejected(errors.PARAMS_INCOMPLETE, "parameters must be UTF-8") from None


async def read_params(scope: Scope, receive: Receive) -> dict[str, str]:
    """The merged parameters of a GET or POST request (the body's value wins)."""
    params = parse_urlencoded(scope.get("query_string", b""))
    if scope["method"] == "POST":
        content_type = _header(scope, b"content-type").split(";")[0].strip().lower()
        if content_type in FORM_TYPES:
            params.update(parse_urlencoded(await _read_body(scope, receive)))
        elif content_type == "multipart/form-data":  # PHP's curl with an array of fields
            params.update(await _read_multipart(scope, receive))
    return params


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


async def _read_multipart(scope: Scope, receive: Receive) -> dict[str, str]:
    _refuse_declared_oversize(scope)
    try:
        form = await Request(scope, receive).form(
            max_files=0, max_fields=100, max_part_size=MAX_BODY_BYTES
        )
    except Exception:  # malformed multipart, a file upload, too many parts
        raise errors.Rejected(errors.PARAMS_INCOMPLETE, "unreadable multipart body") from None
    values: dict[str, str] = {}
    for key, value in form.multi_items():
        if not isinstance(value, str):
            raise errors.Rejected(errors.PARAMS_INCOMPLETE, f"{key!r} is a file")
        if key in values and values[key] != value:
            raise errors.Rejected(errors.PARAMS_INCOMPLETE, f"parameter {key!r} given twice")
        values[key] = value
    return values


def _refuse_declared_oversize(scope: Scope) -> None:
    declared = _header(scope, b"content-length")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise errors.Rejected(errors.PARAMS_INCOMPLETE, "request body too large")


async def _read_body(scope: Scope, receive: Receive) -> bytes:
    _refuse_declared_oversize(scope)
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise errors.Rejected(errors.PARAMS_INCOMPLETE, "the client went away")
        body += bytes(message.get("body", b""))
        if len(body) > MAX_BODY_BYTES:
            raise errors.Rejected(errors.PARAMS_INCOMPLETE, "request body too large")
        if not message.get("more_body", False):
            return body


def client_ip(scope: Scope, trusted_proxies: tuple[IPNetwork, ...]) -> str:
    """The caller's address; X-Forwarded-For is believed only from a trusted proxy."""
    client = scope.get("client")
    peer = str(client[0]) if client else ""
    if not trusted_proxies or not ip_allowed(trusted_proxies, peer):
        return peer
    forwarded = [h.strip() for h in _header(scope, b"x-forwarded-for").split(",")]
    # Walk from the nearest hop outwards and stop at the first address we do not trust.
    for hop in reversed([h for h in forwarded if h]):
        if not ip_allowed(trusted_proxies, hop):
            return hop
    return peer
