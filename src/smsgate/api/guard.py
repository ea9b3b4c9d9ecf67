"""The outermost ASGI layer: limits on every request, whatever the path or server.

- the request target (path and query) at most ``MAX_TARGET`` bytes: 414;
- at most ``MAX_HEADERS`` header fields: 431 (the servers limit their total size);
- a body at most ``MAX_BODY`` bytes, declared or streamed: 413; its bytes must keep
  coming, ``body_timeout`` seconds at most between two reads: 408;
- a client that hangs up (``ClientDisconnect``) is a normal outcome, not an error;
- a service smsgate needs not answering (``errors.Unavailable``, or what the ``outage``
  function given recognises, such as a lost database connection) is an outage, not a bug:
  503 with ``Retry-After``, nothing was carried out, and one log line per outage and
  minute rather than a traceback per request;
- anything else that escapes the app is logged without its message (it may hold phone
  numbers or content, api/logging.py), answered 500 and not handed to the server, whose
  own log would print it whole.

The SMSBao front inside has tighter limits of its own (64 KB bodies, answered ``-1``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smsgate import errors
from smsgate.api.logging import RequestLog, new_request_id, safe_traceback
from smsgate.services.outages import OutageLog

Outage = Callable[[BaseException], errors.Unavailable | None]

MAX_TARGET = 16 * 1024  # a 500-character Chinese text encoded twice and 99 numbers fit
MAX_HEADERS = 100
MAX_BODY = 1024 * 1024
RETRY_AFTER = b"1"  # seconds; a client that honours it comes back when a pause is over

log = logging.getLogger("smsgate.http")


class _Answered(Exception):
    """The guard answered for the app; what the app sends after is dropped."""


class InputGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        body_timeout: float = 10.0,
        access_log: RequestLog | None = None,
        outage: Outage = lambda exc: exc if isinstance(exc, errors.Unavailable) else None,
        outages: OutageLog | None = None,
    ) -> None:
        self._app = app
        self._body_timeout = body_timeout
        self._access_log = access_log
        self._outage = outage
        self._outage_log = outages or OutageLog()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        request_id = new_request_id()
        refusal, has_body = _inspect(scope)
        if refusal is not None:
            await _plain(send, *refusal)
            self._logged(scope, refusal[0], time.perf_counter())
            return
        exchange = _Exchange(receive, send, self._body_timeout, has_body)
        started = time.perf_counter()
        try:
            await self._app(scope, exchange.receive, exchange.send)
        except ClientDisconnect:
            pass  # the client went away mid-request: nothing to answer, nothing to report
        except Exception as exc:
            unavailable = self._outage(exc)
            if unavailable is None:
                self._bug(scope, request_id, exc)
                await exchange.answer(500, b"Internal Server Error")
            else:
                self._outage_log.seen(unavailable)
                await exchange.answer(503, b"Service Unavailable", [(b"retry-after", RETRY_AFTER)])
        self._logged(scope, exchange.status, started)

    def _bug(self, scope: Scope, request_id: str, exc: Exception) -> None:
        """Say where, never what: the message may hold content or phone numbers."""
        log.error(
            "unhandled %s in %s %s [%s]\n%s",
            type(exc).__name__,
            scope["method"],
            scope["path"][:200],
            request_id,
            safe_traceback(exc),
        )

    def _logged(self, scope: Scope, status: int | None, started: float) -> None:
        if self._access_log is not None:
            self._access_log.write(scope, status, time.perf_counter() - started)


def _inspect(scope: Scope) -> tuple[tuple[int, bytes] | None, bool]:
    """(status and text of a refusal, or None; whether a body follows) in one pass."""
    if len(scope.get("raw_path") or b"") + len(scope.get("query_string", b"")) > MAX_TARGET:
        return (414, b"URI Too Long"), False
    headers = scope["headers"]
    if len(headers) > MAX_HEADERS:
        return (431, b"Request Header Fields Too Large"), False
    has_body = False
    for name, value in headers:
        if name == b"content-length":
            if not value.isdigit():
                return (400, b"Bad Content-Length"), False
            if int(value) > MAX_BODY:
                return (413, b"Content Too Large"), False
            has_body = True
        elif name == b"transfer-encoding":
            has_body = True
    return None, has_body


class _Exchange:
    """One request's receive and send, with the body limits and the response's status."""

    def __init__(self, receive: Receive, send: Send, timeout: float, bounded: bool) -> None:
        self._receive = receive
        self._send = send
        self._timeout = timeout
        self._bounded = bounded
        self._received = 0
        self.status: int | None = None
        self._answered = False

    async def receive(self) -> Message:
        if not self._bounded:
            return await self._receive()
        try:
            async with asyncio.timeout(self._timeout):
                message = await self._receive()
        except TimeoutError:
            await self.answer(408, b"Request Timeout")
            return {"type": "http.disconnect"}
        self._received += len(message.get("body", b""))
        if self._received > MAX_BODY:
            await self.answer(413, b"Content Too Large")
            return {"type": "http.disconnect"}
        return message

    async def send(self, message: Message) -> None:
        if self._answered:
            return  # the guard answered already; the app is only winding down
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
        await self._send(message)

    async def answer(
        self, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        if self.status is None and not self._answered:
            self.status = status
            await _plain(self._send, status, body, extra)
        self._answered = True


async def _plain(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *(extra or ()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
