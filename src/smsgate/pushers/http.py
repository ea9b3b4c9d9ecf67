"""The Pusher port on httpx: ``GET <url>?m=<phone>&c=<content>``, as SMSBao pushes replies.

``m`` and ``c`` are UTF-8 and percent-encoded with nothing left bare (a space is ``%20``,
``+`` is ``%2B``, ``&`` ``%26``, ``=`` ``%3D``, ``%`` ``%25``, a newline ``%0A``), so that
any receiver's query parser gets the text back byte for byte. They are appended with
``&`` when the URL already has a query string, which the receiver keeps (a token, say).

A timeout or a connection error is ``(None, None)``: a failed attempt like any other.
The timeout bounds the whole attempt (connect, send, wait, read), not each step, so a
receiver that trickles its answer cannot hold a push longer than the setting says.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import quote

import httpx

log = logging.getLogger(__name__)

MAX_BODY = 1024  # bytes of the answer kept: enough to see `0` or an error page's start
# Idle connections kept open. httpcore checks every pooled connection on each request, so a
# big idle pool costs more CPU than the reconnects it saves (bench/PUSH.md: ~1.5x faster
# with 8 than with 20 or 64 at 64 pushes in flight); replies to one account are sparse.
KEEPALIVE = 8


def push_url(url: str, phone: str, content: str) -> str:
    """The URL to GET: the account's URL, its query kept, with m and c appended."""
    base = url.split("#", 1)[0]  # a fragment is never sent; the query goes before it
    query = f"m={quote(phone, safe='')}&c={quote(content, safe='')}"
    if "?" not in base:
        return f"{base}?{query}"
    if base.endswith(("?", "&")):
        return base + query
    return f"{base}&{query}"


class HttpPusher:
    def __init__(self, timeout: float, max_connections: int = 100) -> None:
        self._timeout = timeout
        # One client for every push: connections to a receiver are reused (keep-alive).
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=min(KEEPALIVE, max_connections),
            ),
            follow_redirects=False,  # a 3xx is not a 2xx: SMSBao does not follow either
            headers={"User-Agent": "smsgate-push"},
            # HTTPS_PROXY / NO_PROXY are honoured: a gateway often reaches the Internet
            # through one.
        )

    async def push(self, url: str, phone: str, content: str) -> tuple[int | None, str | None]:
        try:
            async with asyncio.timeout(self._timeout):
                return await self._get(push_url(url, phone, content))
        except (TimeoutError, httpx.HTTPError, httpx.InvalidURL) as exc:
            log.info("push to %s: %s", _origin(url), type(exc).__name__)
            return None, None

    async def _get(self, target: str) -> tuple[int, str]:
        async with self._client.stream("GET", target) as response:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) >= MAX_BODY:
                    break
            return response.status_code, body[:MAX_BODY].decode("utf-8", errors="replace")

    async def close(self) -> None:
        await self._client.aclose()


def _origin(url: str) -> str:
    """The URL without its query, for logs: a query may hold the account's token."""
    return url.split("?", 1)[0]
