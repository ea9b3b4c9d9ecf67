"""Real HTTP receivers for reply pushes, on loopback: what an account's MO URL runs.

A :class:`Receiver` is a small threaded ``http.server`` that records every request
(when it came, the raw target) and answers as told: a body (``0``, ``ok``), a status
(500), or nothing at all for a while (``hang``). One that is not started yet is a URL
that is down: start it later, on the same port, to bring it up.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote_to_bytes, urlsplit

from smsgate.client.receiver import parse_push
from smsgate.core.targets import TargetPolicy

# The receivers run on loopback, which pushes may not reach by default (SSRF guard): tests
# allow it the way an operator allows an internal receiver (push_allowed_targets).
ALLOW_RECEIVERS = "127.0.0.1"
RECEIVER_TARGETS = TargetPolicy.parse([ALLOW_RECEIVERS])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Hit:
    """One request the receiver got."""

    at: float  # time.time() when it arrived
    target: str  # the raw request target: /path?query
    host: str = ""  # the Host header

    @property
    def query(self) -> str:
        return urlsplit(self.target).query

    @property
    def params(self) -> dict[str, str]:
        return dict(parse_qsl(self.query, keep_blank_values=True))

    @property
    def m(self) -> str:
        return parse_push(self.query).phone

    @property
    def c(self) -> str:
        """The content as the SDK's receiver decodes it."""
        return parse_push(self.query).content

    @property
    def raw_c(self) -> bytes:
        """The content's bytes, percent-decoding only: what arrived on the wire."""
        for pair in self.query.split("&"):
            key, _, value = pair.partition("=")
            if key == "c":
                return unquote_to_bytes(value)
        raise AssertionError(f"no c in {self.target!r}")


class Receiver:
    def __init__(
        self, body: str = "0", status: int = 200, hang: float = 0.0, port: int | None = None
    ) -> None:
        self.body = body
        self.status = status
        self.hang = hang  # seconds to wait before answering (past the push timeout: a hang)
        self.location: str | None = None  # a Location header to answer with (redirects)
        self.port = port or free_port()
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def url(self, path: str = "/mo") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> Receiver:
        handler = _handler(self)
        server = _Server(("127.0.0.1", self.port), handler, bind_and_activate=False)
        server.allow_reuse_address = True
        server.daemon_threads = True
        server.block_on_close = False  # a hanging request must not hold up stop()
        server.server_bind()
        server.server_activate()
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def record(self, target: str, host: str = "") -> None:
        with self._lock:
            self.hits.append(Hit(time.time(), target, host))

    def count(self) -> int:
        with self._lock:
            return len(self.hits)

    def wait_for(self, count: int, timeout: float) -> list[Hit]:
        """Wait until at least ``count`` requests came (or ``timeout``); return them all."""
        deadline = time.monotonic() + timeout
        while self.count() < count and time.monotonic() < deadline:
            time.sleep(0.02)
        with self._lock:
            return list(self.hits)

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """A pusher that gave up and closed its connection is expected here: stay quiet."""


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            receiver.record(self.path, self.headers.get("Host", ""))
            if receiver.hang:
                time.sleep(receiver.hang)
            payload = receiver.body.encode("utf-8")
            try:
                self.send_response(receiver.status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                if receiver.location is not None:
                    self.send_header("Location", receiver.location)
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the pusher gave up (timeout) and closed the connection
                pass

        def log_message(self, format: str, *args: object) -> None:  # quiet test output
            pass

    return Handler
