"""Receiving user replies (MO push): ``GET <your url>?m=<phone>&c=<UTF-8 URL-encoded text>``.

The platform counts a push as delivered when the answer is HTTP 2xx with the body ``0``, and
tries again later otherwise (1, 3 and 10 minutes after). So answer ``0`` only once the reply
is safely in your hands, and keep the callback quick: queue the work, do it later.

- :func:`handle_push` / :func:`handle_push_async`: for any web framework, give them the raw
  query string and return their answer as a ``text/plain`` body.
- :class:`ReplyReceiver`: a tiny ASGI app (no framework needed) to run under uvicorn or to
  mount in an existing ASGI app.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

log = logging.getLogger(__name__)

OK = "0"
ERROR = "error"
BAD_REQUEST = "missing m or c"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BadPush(ValueError):
    """The push lacks ``m`` or ``c``, or is not valid UTF-8."""


@dataclass(frozen=True, slots=True)
class Reply:
    """One user reply: the sender's number, the text exactly as typed, and the raw query
    (which also holds any parameters of your own push URL, see :attr:`params`)."""

    phone: str
    content: str
    raw_query: str

    @property
    def params(self) -> Mapping[str, str]:
        """Every query parameter (the last value when one repeats), e.g. a token of yours."""
        return {key: values[-1] for key, values in _parse(self.raw_query).items()}


ReplyCallback = Callable[[Reply], object]


def _parse(query: str) -> dict[str, list[str]]:
    try:
        return parse_qs(query, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise BadPush(f"not UTF-8: {exc}") from None


def parse_push(query_string: str | bytes) -> Reply:
    """The reply in a raw query string (``%2B`` is ``+``, a bare ``+`` a space).

    ``m`` must be non-empty and ``c`` present; ``c`` is kept exactly, whitespace included.
    """
    query = _text(query_string)
    params = _parse(query)
    phone = params.get("m", [""])[-1].strip()
    if not phone or "c" not in params:
        raise BadPush(BAD_REQUEST)
    return Reply(phone, params["c"][-1], query)


def _text(query_string: str | bytes) -> str:
    if isinstance(query_string, str):
        return query_string
    try:
        return query_string.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadPush(f"not UTF-8: {exc}") from None


def _outcome(query_string: str | bytes) -> Reply | str:
    """The reply, or the answer to give when there is none."""
    try:
        return parse_push(query_string)
    except BadPush as exc:
        log.warning("rejected a reply push: %s", exc)
        return str(exc)


def handle_push(query_string: str | bytes, callback: ReplyCallback) -> str:
    """Parse a push, call ``callback(reply)``, return the body to answer.

    ``"0"`` when the callback returned; ``"error"`` when it raised (the platform will push
    again); the reason (e.g. ``"missing m or c"``) for a malformed push.
    Use :func:`handle_push_async` for a coroutine callback.
    """
    reply = _outcome(query_string)
    if isinstance(reply, str):
        return reply
    try:
        result = callback(reply)
    except Exception:
        log.exception("reply callback failed for %s", reply.phone)
        return ERROR
    if inspect.isawaitable(result):
        _close(result)
        raise TypeError("the callback is async: use handle_push_async or ReplyReceiver")
    return OK


async def handle_push_async(query_string: str | bytes, callback: ReplyCallback) -> str:
    """Like :func:`handle_push`; an async callback is awaited, a plain one runs in a thread."""
    reply = _outcome(query_string)
    if isinstance(reply, str):
        return reply
    try:
        await _call(callback, reply)
    except Exception:
        log.exception("reply callback failed for %s", reply.phone)
        return ERROR
    return OK


async def _call(callback: ReplyCallback, reply: Reply) -> None:
    if _is_async(callback):
        result = callback(reply)
    else:
        result = await asyncio.to_thread(callback, reply)
    if inspect.isawaitable(result):
        await result


def _is_async(callback: object) -> bool:
    # a function, or an object whose class has an ``async def __call__``
    return inspect.iscoroutinefunction(callback) or inspect.iscoroutinefunction(
        type(callback).__call__
    )


def _close(awaitable: object) -> None:
    close = getattr(awaitable, "close", None)
    if callable(close):
        close()


class ReplyReceiver:
    """ASGI app answering the platform's pushes on any path.

    ``GET`` with ``m`` and ``c`` calls ``callback(reply)`` (sync callbacks run in a worker
    thread) and answers ``200 0``; a failing callback gets ``500 error``, a push without
    ``m``/``c`` ``400``, another method ``405``. Lifespan events are acknowledged.
    """

    def __init__(self, callback: ReplyCallback) -> None:
        self.callback = callback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        elif scope["type"] == "http":
            status, body = await self._answer(scope)
            await _respond(send, status, body)
        else:
            raise RuntimeError(f"ReplyReceiver serves HTTP, not {scope['type']!r}")

    async def _answer(self, scope: Scope) -> tuple[int, str]:
        if scope["method"] != "GET":
            return 405, "method not allowed"
        body = await handle_push_async(scope.get("query_string", b""), self.callback)
        return {OK: 200, ERROR: 500}.get(body, 400), body


async def _respond(send: Send, status: int, body: str) -> None:
    payload = body.encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(payload)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
