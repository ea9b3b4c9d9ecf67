"""The Pusher port on httpx: ``GET <url>?m=<phone>&c=<content>``, as SMSBao pushes replies.

``m`` and ``c`` are UTF-8 and percent-encoded with nothing left bare (a space is ``%20``,
``+`` is ``%2B``, ``&`` ``%26``, ``=`` ``%3D``, ``%`` ``%25``, a newline ``%0A``), so that
any receiver's query parser gets the text back byte for byte. They are appended with
``&`` when the URL already has a query string, which the receiver keeps (a token, say).

A timeout or a connection error is ``(None, None)``: a failed attempt like any other.
The timeout bounds the whole attempt (connect, send, wait, read), not each step, so a
receiver that trickles its answer cannot hold a push longer than the setting says.

Targets are guarded against SSRF (``pushers.guard``, ``core.targets``): a URL whose host
resolves to an internal address raises ``errors.TargetRefused``, and redirects are never
followed, so a public receiver cannot bounce a push to an internal one. Through an HTTP
proxy (``HTTPS_PROXY``) the target is resolved and checked before each push, but the
proxy resolves it again: such a proxy should refuse internal targets itself.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import quote

import httpcore
import httpx
from httpx._utils import get_environment_proxies  # what httpx itself reads from the env

from smsgate import errors
from smsgate.core.targets import TargetPolicy
from smsgate.pushers.guard import (
    GuardedBackend,
    GuardedTransport,
    Resolver,
    checked_addresses,
    refusal_of,
    system_resolve,
)

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
    def __init__(
        self,
        timeout: float,
        max_connections: int = 100,
        targets: TargetPolicy | None = None,
        resolve: Resolver = system_resolve,
    ) -> None:
        self._timeout = timeout
        self._targets = targets or TargetPolicy()
        self._resolve = resolve
        limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=min(KEEPALIVE, max_connections),
        )
        # HTTPS_PROXY / NO_PROXY are honoured: a gateway often reaches the Internet
        # through one. (httpx drops them when given a transport, so they are mounted here.)
        proxies = get_environment_proxies()
        self._proxied = any(proxies.values())
        # One client for every push: connections to a receiver are reused (keep-alive).
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            transport=GuardedTransport(GuardedBackend(self._targets, resolve), limits),
            mounts={
                pattern: None if proxy is None else httpx.AsyncHTTPTransport(proxy=proxy)
                for pattern, proxy in proxies.items()
            },
            follow_redirects=False,  # a 3xx is not a 2xx, and a redirect is not re-checked
            headers={"User-Agent": "smsgate-push"},
        )

    async def push(self, url: str, phone: str, content: str) -> tuple[int | None, str | None]:
        try:
            async with asyncio.timeout(self._timeout):
                if self._proxied:
                    await self._check_before_proxy(url)
                return await self._get(push_url(url, phone, content))
        except (TimeoutError, httpx.HTTPError, httpx.InvalidURL, httpcore.ConnectError) as exc:
            reason = refusal_of(exc)
            if reason is not None:
                log.warning("push to %s refused: %s", _origin(url), reason)
                raise errors.TargetRefused(reason) from None
            log.info("push to %s: %s", _origin(url), type(exc).__name__)
            return None, None

    async def _check_before_proxy(self, url: str) -> None:
        """A proxy connects for us: check where the target resolves to first."""
        parsed = httpx.URL(url)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        await checked_addresses(self._targets, self._resolve, parsed.host, port)

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
