"""Connect-time SSRF guard for reply pushes: resolve, check every address, connect to it.

httpcore opens each new connection through a network backend's ``connect_tcp(host,
port)``; TLS is started afterwards with the URL's host name as SNI and for certificate
checks. This backend resolves the host itself, refuses the connection if any resolved
address is outside the public Internet (``core.targets``), and connects to a checked
address, never to the name: a second lookup that could answer differently (DNS
rebinding) never happens. Connections kept alive were checked when they were opened.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio
import httpcore
import httpx

from smsgate.core.targets import IPAddress, TargetPolicy, ip_literal

# host, port -> the addresses it resolves to (a seam for tests; the system resolver).
Resolver = Callable[[str, int], Awaitable[list[str]]]


class TargetRefused(httpcore.ConnectError):
    """A push target resolved to an address the policy refuses."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"refused: {reason}")
        self.reason = reason


async def system_resolve(host: str, port: int) -> list[str]:
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def checked_addresses(
    policy: TargetPolicy, resolve: Resolver, host: str, port: int
) -> list[str]:
    """The addresses to connect to for ``host``; TargetRefused if any of them is refused."""
    why = policy.host_refusal(host)
    if why is not None:
        raise TargetRefused(why)
    literal = ip_literal(host)
    if literal is not None:
        return [str(literal)]
    try:
        found = await resolve(host, port)
    except OSError as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
    if policy.allows_host(host):
        return _unique(found)
    for address in found:
        why = policy.refusal(_address(address))
        if why is not None:
            raise TargetRefused(f"{host} resolves to {why}")
    return _unique(found)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(
        self,
        policy: TargetPolicy,
        resolve: Resolver = system_resolve,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._policy = policy
        self._resolve = resolve
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await checked_addresses(self._policy, self._resolve, host, port)
        last: Exception | None = None
        for address in addresses:  # each one checked; the first that answers
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None  # a resolver answers at least one address or raises
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise TargetRefused("unix sockets are not push targets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with its connection pool on the guarded backend.

    httpx does not take a network backend, so the pool is rebuilt with the same limits;
    request and error mapping stay httpx's own.
    """

    def __init__(self, backend: GuardedBackend, limits: httpx.Limits) -> None:
        super().__init__(limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


def refusal_of(exc: BaseException) -> str | None:
    """The policy's reason if ``exc`` (an httpx error) comes from a refused target."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, TargetRefused):
            return cause.reason
        cause = cause.__cause__ or cause.__context__
    return None


def _address(text: str) -> IPAddress:
    return ipaddress.ip_address(text.split("%", 1)[0])


def _unique(addresses: list[str]) -> list[str]:
    return list(dict.fromkeys(addresses))
