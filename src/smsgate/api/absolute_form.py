"""Serve absolute-form request targets (``GET http://api.smsbao.com/sms?... HTTP/1.1``).

Clients configured with an HTTP proxy send the whole URL as the target. Some HTTP
parsers already reduce it to the path; others hand the ASGI app the full URL.
:func:`origin_form` makes both look like an origin-form request, whatever the host named.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from starlette.types import Scope


def origin_form(scope: Scope) -> Scope:
    """The scope as if the target had been origin-form (the same scope when it was)."""
    raw = scope.get("raw_path") or scope["path"].encode("latin-1")
    if raw[:7].lower() != b"http://" and raw[:8].lower() != b"https://":
        return scope
    scope = dict(scope)
    parts = urlsplit(raw.decode("latin-1"))
    path = parts.path or "/"
    scope["raw_path"] = path.encode("latin-1")
    scope["path"] = unquote(path)
    if parts.query and not scope.get("query_string"):
        scope["query_string"] = parts.query.encode("latin-1")
    return scope
