"""The HTTP servers' own limits, given the same way to every listener (plain and TLS).

The app's guard (api/guard.py) bounds what reaches it; these bound what the server reads
before that: the request head and how long a client may take to send it, and how long an
idle keep-alive connection is held.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smsgate.settings import Settings

if TYPE_CHECKING:
    from granian.http import HTTP1Settings

# Request heads (request line and headers) larger than this are refused by the server.
MAX_HEAD_BYTES = 64 * 1024


def granian_http1(settings: Settings) -> HTTP1Settings:
    from granian.http import HTTP1Settings

    return HTTP1Settings(
        header_read_timeout=int(settings.http_header_timeout_seconds * 1000),
        max_buffer_size=MAX_HEAD_BYTES,
    )


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's protocol with our head timeout (set by app.serving_app) and keep-alive."""
    from smsgate.api import uvicorn_http

    return {
        "http": uvicorn_http.GuardedHttpTools,
        "timeout_keep_alive": settings.http_keep_alive_seconds,
    }
