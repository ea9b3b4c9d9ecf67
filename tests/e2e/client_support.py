"""Helpers for the SDK end-to-end tests (test_client_e2e.py, test_client_cli_e2e.py).

- :class:`Clients`: makes ``Client`` or ``AsyncClient`` objects with one blocking
  interface, so each test body runs against both. An ``AsyncClient`` is driven on a private
  event loop (``asyncio.Runner``) that lives as long as the test: its connection pool
  stays on one loop, exactly as in an application.
- :class:`Valve`: an HTTP relay in front of the server whose next requests the test
  scripts: forward, hold (never forwarded, never answered) or swallow (forwarded, the
  server's answer never returned). It records every request's numbers. With it a test can
  stop a bulk send after exactly N batches, or make a send time out *after* the server
  accepted it.
- :func:`serve_asgi`: an ASGI app (the SDK's ``ReplyReceiver``) under uvicorn, in a thread,
  on a free loopback port; :func:`serve_handle_push`: the framework-neutral ``handle_push``
  behind the standard library's HTTP server.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import inspect
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from smsgate.client import AsyncClient, Client, handle_push
from smsgate.client.receiver import ReplyCallback
from tests.e2e.server_support import Account

KINDS = ("Client", "AsyncClient")


# -- one blocking face for both clients --------------------------------------------------


class Blocking:
    """An AsyncClient whose coroutine methods run to completion on `runner`'s loop."""

    def __init__(self, client: AsyncClient, runner: asyncio.Runner) -> None:
        self.client = client
        self._runner = runner

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.client, name)
        if not inspect.iscoroutinefunction(attr):
            return attr
        return lambda *args, **kwargs: self._runner.run(attr(*args, **kwargs))


class Clients:
    """``clients(account, "password" | "api_key", **options)``: a Client or an AsyncClient
    (by ``kind``) for `account` on `base_url`; every one is closed by :meth:`close`."""

    def __init__(self, kind: str, base_url: str) -> None:
        assert kind in KINDS
        self.kind = kind
        self.base_url = base_url
        self._runner = asyncio.Runner() if kind == "AsyncClient" else None
        self._made: list[Any] = []

    def __call__(self, account: Account | str, creds: str = "api_key", **options: Any) -> Any:
        if isinstance(account, Account):
            username = account.username
            secret = {"password": account.password, "api_key": account.api_key}[creds]
            options = {creds: secret, **options}
        else:
            username = account
        options.setdefault("base_url", self.base_url)
        options.setdefault("timeout", 10.0)
        if self._runner is None:
            made: Any = Client(username, **options)
        else:
            made = Blocking(AsyncClient(username, **options), self._runner)
        self._made.append(made)
        return made

    def close(self) -> None:
        for made in self._made:
            if isinstance(made, Blocking):
                made.aclose()
            else:
                made.close()
        if self._runner is not None:
            self._runner.close()


# -- a scripted relay -------------------------------------------------------------------

FORWARD, HOLD, SWALLOW = "forward", "hold", "swallow"
HOP_BY_HOP = ("connection", "keep-alive", "transfer-encoding", "host", "content-length")


@dataclass(frozen=True)
class Relayed:
    """One request the valve got: its target, its numbers and what the valve did."""

    target: str
    action: str

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def phones(self) -> list[str]:
        values = parse_qs(urlsplit(self.target).query).get("m", [""])
        return [p for p in values[-1].split(",") if p]


class Valve:
    """A relay to `upstream` (``http://127.0.0.1:PORT``); see the module docstring.

    :meth:`plan` queues the actions for the next requests; when the queue is empty a
    request is forwarded. Held and swallowed requests wait until :meth:`release` (or
    :meth:`close`), then their connection is closed without an answer.
    """

    def __init__(self, upstream: str) -> None:
        self._upstream = urlsplit(upstream)
        self._plan: list[str] = []
        self._lock = threading.Condition()
        self._release = threading.Event()
        self.requests: list[Relayed] = []
        self._server = _QuietServer(("127.0.0.1", 0), _relay_handler(self))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def plan(self, *actions: str) -> None:
        assert all(a in (FORWARD, HOLD, SWALLOW) for a in actions), actions
        with self._lock:
            self._plan = list(actions)

    def release(self) -> None:
        """End every held or swallowed request (closed, no answer)."""
        with self._lock:
            event, self._release = self._release, threading.Event()
        event.set()

    def wait_for(self, n: int, timeout: float = 30.0) -> list[Relayed]:
        """Wait until `n` requests have arrived; all of them."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.requests)} requests, not {n}")
                self._lock.wait(left)
            return list(self.requests)

    def close(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    # -- for the handler --

    def _admit(self, target: str) -> tuple[str, threading.Event]:
        with self._lock:
            action = self._plan.pop(0) if self._plan else FORWARD
            self.requests.append(Relayed(target, action))
            self._lock.notify_all()
            return action, self._release

    def _forward(
        self, target: str, headers: dict[str, str]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        host, port = self._upstream.hostname, self._upstream.port
        assert host is not None
        conn = http.client.HTTPConnection(host, port, timeout=30)
        try:
            # the target byte for byte, as the client sent it, and its headers (Authorization)
            conn.request("GET", target, headers=headers)
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client killed mid-request is part of the test


def _relay_handler(valve: Valve) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like the real server

        def do_GET(self) -> None:
            action, released = valve._admit(self.path)
            if action == HOLD:
                released.wait(60)
                self.close_connection = True
                return
            sent = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            status, headers, body = valve._forward(self.path, sent)
            if action == SWALLOW:
                released.wait(60)
                self.close_connection = True
                return
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in (*HOP_BY_HOP, "date", "server"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


# -- reply receivers -------------------------------------------------------------------------


@contextlib.contextmanager
def serve_asgi(app: Any) -> Iterator[str]:
    """Run `app` under uvicorn in a thread on a free loopback port; yields its base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan="on",
        ws="none",
        http="h11",
        loop="asyncio",
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped before it started"
        assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@contextlib.contextmanager
def serve_handle_push(callback: ReplyCallback) -> Iterator[str]:
    """``handle_push`` in a plain ``http.server`` handler (200 and its answer, as in the
    docs' Flask example); yields the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = handle_push(urlsplit(self.path).query, callback).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = _QuietServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


# -- the bulk-send journal --------------------------------------------------------------------


def journal(path: Path) -> list[dict[str, Any]]:
    """The records of ``<path>.smsgate-journal`` (the CLI's resumable-send journal)."""
    lines = path.with_name(path.name + ".smsgate-journal").read_text(encoding="utf-8")
    return [json.loads(line) for line in lines.splitlines() if line.strip()]
