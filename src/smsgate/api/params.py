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
        return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        raise errors.Rejected(errors.PARAMS_INCOMPLETE, "parameters must be UTF-8") from None


async def read_params(request: Request) -> dict[str, str]:
    """The merged parameters of a GET or POST request."""
    params = parse_urlencoded(request.scope.get("query_string", b""))
    if request.method == "POST":
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type in FORM_TYPES:
            params.update(parse_urlencoded(await _read_body(request)))
        elif content_type == "multipart/form-data":  # PHP's curl with an array of fields
            params.update(await _read_multipart(request))
    return params


async def _read_multipart(request: Request) -> dict[str, str]:
    _refuse_declared_oversize(request)
    try:
        form = await request.form(max_files=0, max_fields=100, max_part_size=MAX_BODY_BYTES)
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


def _refuse_declared_oversize(request: Request) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise errors.Rejected(errors.PARAMS_INCOMPLETE, "request body too large")


async def _read_body(request: Request) -> bytes:
    _refuse_declared_oversize(request)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise errors.Rejected(errors.PARAMS_INCOMPLETE, "request body too large")
    return bytes(body)


def client_ip(request: Request, trusted_proxies: tuple[IPNetwork, ...]) -> str:
    """The caller's address; X-Forwarded-For is believed only from a trusted proxy."""
    peer = request.client.host if request.client else ""
    if not trusted_proxies or not ip_allowed(trusted_proxies, peer):
        return peer
    forwarded = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",")]
    # Walk from the nearest hop outwards and stop at the first address we do not trust.
    for hop in reversed([h for h in forwarded if h]):
        if not ip_allowed(trusted_proxies, hop):
            return hop
    return peer
