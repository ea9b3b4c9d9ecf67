"""uvicorn's HTTP/1.1 protocol (httptools) with the two guards it lacks.

Left alone it buffers a request head of any size (100 MB headers grew the process by
hundreds of MB) and waits for a head for ever (a thousand clients sending a byte a
second took the server down). Here the head is limited in bytes (431, then close) and
in time (the connection is closed): both count from the end of the previous response,
so an idle keep-alive connection is bounded too. granian has both built in
(`cli/serve.py` sets them).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEAD_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8"
    b"\r\ncontent-length: 31\r\nconnection: close\r\n\r\nRequest header fields too large"
)


class GuardedHttpTools(HttpToolsProtocol):
    head_limit = 64 * 1024  # request line and headers, bytes
    head_timeout = 10.0  # seconds

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._reading_head = True
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._reading_head:
            super().data_received(data)
            return
        room = self.head_limit - self._head_bytes
        self._head_bytes += min(len(data), room)
        if len(data) <= room:
            super().data_received(data)
            return
        super().data_received(data[:room])  # the head may end within it
        if self._reading_head:
            self._stop_head_timer()
            self.transport.write(HEAD_TOO_LARGE)
            self.transport.close()
        elif not self.transport.is_closing():
            super().data_received(data[room:])

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_head = True

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._stop_head_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        idle = self.cycle is None or self.cycle.response_complete  # no pipelined request
        if idle and not self.transport.is_closing():
            self._await_head()

    def _await_head(self) -> None:
        self._stop_head_timer()
        self._reading_head = True
        self._head_bytes = 0
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_too_slow)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._reading_head and not self.transport.is_closing():
            self.transport.close()


def use_head_timeout(seconds: float) -> None:
    """Set the head timeout of this process's protocol. uvicorn imports the protocol class
    by name in each worker process (it cannot take a configured instance), so each process
    sets it from its settings when it builds the app."""
    GuardedHttpTools.head_timeout = seconds
