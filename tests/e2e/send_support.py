"""Helpers for the send-path end-to-end tests (test_send*.py).

What the send tests share: server settings that make them fast and deterministic, the
wire check every SMSBao answer must pass, unique numbers and contents, the account's
books read straight from the test database, the JSON API's message list, and a small
recording relay that shows which request line a proxied client really sent.

Accounts come from accounts_support.py (the ``pool`` and ``provisioner`` fixtures).
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import random
import re
import socket
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import sqlalchemy as sa

from tests.e2e.accounts_support import SIGNATURE
from tests.e2e.server_support import Account, ServerProcess
from tests.support.waiting import wait_for

TEXT = "text/plain; charset=utf-8"
SIG = f"【{SIGNATURE}】"
# Every send answer: 0, -1 or a two-digit code; nothing else, no whitespace.
SEND_BODY = re.compile(r"0|-1|[1-9][0-9]")
FINAL_STATES = frozenset({"delivered", "undelivered", "failed", "expired"})

# Settings for a send-path server: per-number caps out of the way (tests about them set
# their own with `account limits`), the same-content rule kept (default 1 h), balance
# queries unlimited, failed logins not locking out 127.0.0.1, a quick simulator.
SEND_ENV: dict[str, str] = {
    "SMSGATE_FREQ_PER_MINUTE": "100000",
    "SMSGATE_FREQ_PER_HOUR": "100000",
    "SMSGATE_FREQ_PER_DAY": "100000",
    "SMSGATE_QUERY_INTERVAL_SECONDS": "0",
    "SMSGATE_LOGIN_FAILURES_PER_IP": "100000",
    "SMSGATE_LOGIN_FAILURES_PER_ACCOUNT": "100000",
    "SMSGATE_SIMULATOR_DELAY_SECONDS": "0.2",
}


# -- numbers and contents ---------------------------------------------------------------


class Numbers:
    """Distinct valid mainland mobile numbers (139xxxxxxxx), none ending in `avoid`."""

    def __init__(self, avoid: Iterable[str] = ()) -> None:
        self._avoid = tuple(s for s in avoid if s)
        self._next = itertools.count(random.randrange(10_000_000, 80_000_000, 1000))
        self._heads = itertools.count(random.randrange(1000, 9000))

    def one(self) -> str:
        while True:
            number = f"139{next(self._next):08d}"
            if not number.endswith(self._avoid):
                return number

    def many(self, n: int) -> list[str]:
        return [self.one() for _ in range(n)]

    def ending(self, suffix: str) -> str:
        """A new number ending in `suffix` (for the simulator's scripted outcomes)."""
        width = 8 - len(suffix)
        head = next(self._heads) % 10**width
        return f"139{head:0{width}d}{suffix}"


_content_ids = itertools.count(1)


def content(text: str = "您的验证码是") -> str:
    """A signed content never sent before (the same-content rule sees it as new)."""
    return f"{SIG}{text}{next(_content_ids):05d}"


def sized(length: int, text: str = "测") -> str:
    """Signed content of exactly `length` characters, unique per call."""
    tag = f"{next(_content_ids):05d}"
    filler = length - len(SIG) - len(tag)
    assert filler >= 0, length
    return SIG + tag + text * filler


# -- the wire -----------------------------------------------------------------------------


def wire(response: httpx.Response) -> str:
    """The code, after checking what every SMSBao send answer must look like."""
    assert response.status_code == 200, (response.status_code, response.text)
    assert response.headers["content-type"] == TEXT, response.headers
    body = response.content.decode("utf-8")
    assert SEND_BODY.fullmatch(body), repr(body)
    return body


class Gate:
    """Sends to one server over one keep-alive httpx client."""

    def __init__(self, server: ServerProcess, client: httpx.Client) -> None:
        self.server = server
        self.client = client

    def get(self, path: str, params: Mapping[str, str] | str) -> str:
        return wire(self.client.get(f"{self.server.url}{path}", params=params))

    def post(
        self,
        path: str,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> str:
        if content is not None:
            headers = {"content-type": "application/x-www-form-urlencoded"}
            response = self.client.post(
                f"{self.server.url}{path}", params=params, content=content, headers=headers
            )
        else:
            response = self.client.post(f"{self.server.url}{path}", params=params, data=data)
        return wire(response)

    def sms(
        self,
        acct: Account,
        m: str | Iterable[str],
        c: str,
        *,
        path: str = "/sms",
        p: str | None = None,
        **extra: str,
    ) -> str:
        """GET `path` as `acct` (p: its ApiKey unless given); `m` a string or numbers."""
        numbers = m if isinstance(m, str) else ",".join(m)
        params = {"u": acct.username, "p": p or acct.api_key, "m": numbers, "c": c, **extra}
        return self.get(path, params)

    def query(self, acct: Account) -> tuple[int, int]:
        """/query: (sent, remaining)."""
        response = self.client.get(
            f"{self.server.url}/query", params={"u": acct.username, "p": acct.api_key}
        )
        assert response.status_code == 200
        assert response.headers["content-type"] == TEXT
        body = response.content.decode("utf-8")
        match = re.fullmatch(r"0\n([0-9]+),([0-9]+)", body)
        assert match, repr(body)
        return int(match.group(1)), int(match.group(2))


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def code(self) -> str:
        """The SMSBao code, after the same checks as :func:`wire`."""
        assert self.status == 200, (self.status, self.body)
        assert self.headers.get("content-type") == TEXT, self.headers
        text = self.body.decode("utf-8")
        assert SEND_BODY.fullmatch(text), repr(text)
        return text


def raw_request(
    server: ServerProcess,
    method: str,
    target: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> RawResponse:
    """A request whose target goes on the wire byte for byte (no re-encoding)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, target, body=body, headers=dict(headers or {}))
        response = conn.getresponse()
        return RawResponse(
            response.status,
            {k.lower(): v for k, v in response.getheaders()},
            response.read(),
        )
    finally:
        conn.close()


def raw_socket(server: ServerProcess, request: bytes) -> tuple[bytes, dict[str, str], bytes]:
    """Write `request` as is; (status line, headers, body) of the answer (Connection: close)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def query_string(params: Mapping[str, str]) -> str:
    return urlencode(params, encoding="utf-8")


# -- the books, read from the database ------------------------------------------------


@dataclass(frozen=True)
class Books:
    balance: int
    sent: int
    ledger_sum: int
    charged: int  # -(sum of charge and refund rows): what `sent` must equal
    messages: int
    batches: int
    message_cost: int  # sum of messages.cost of messages not refunded


def books(server: ServerProcess, username: str) -> Books:
    with server.engine.connect() as conn:
        account_id, balance, sent = conn.execute(
            sa.text("SELECT id, balance, sent FROM accounts WHERE username = :u"),
            {"u": username},
        ).one()
        ledger_sum, charged = conn.execute(
            sa.text(
                "SELECT COALESCE(SUM(delta), 0), "
                "COALESCE(SUM(CASE WHEN kind IN ('charge', 'refund') THEN -delta ELSE 0 END), 0) "
                "FROM ledger WHERE account_id = :a"
            ),
            {"a": account_id},
        ).one()
        messages, cost = conn.execute(
            sa.text(
                "SELECT COUNT(*), COALESCE(SUM(CASE WHEN state IN ('failed', 'expired') "
                "THEN 0 ELSE cost END), 0) FROM messages WHERE account_id = :a"
            ),
            {"a": account_id},
        ).one()
        batches = conn.execute(
            sa.text("SELECT COUNT(*) FROM batches WHERE account_id = :a"), {"a": account_id}
        ).scalar_one()
    return Books(
        int(balance),
        int(sent),
        int(ledger_sum),
        int(charged),
        int(messages),
        int(batches),
        int(cost),
    )


def stored_messages(server: ServerProcess, username: str) -> list[dict[str, Any]]:
    """The account's message rows (oldest first) as dicts."""
    with server.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT m.id, m.batch_id, m.kind, m.phone, m.content, m.units, m.cost, m.state "
                "FROM messages m JOIN accounts a ON a.id = m.account_id "
                "WHERE a.username = :u ORDER BY m.id"
            ),
            {"u": username},
        ).mappings()
        return [dict(r) for r in rows]


def add_optout(server: ServerProcess, username: str, *phones: str) -> None:
    """Put `phones` (national form) on the account's opt-out list, as MO intake would.

    There is no MO intake yet, so the row goes in by SQL, and ``config_rev`` is bumped in
    the same transaction as the store's own ``add_optout`` does: a running server reloads
    its snapshot only when that counter moves.
    """
    with server.engine.begin() as conn:
        account_id = conn.execute(
            sa.text("SELECT id FROM accounts WHERE username = :u"), {"u": username}
        ).scalar_one()
        conn.execute(
            sa.text("INSERT INTO optouts (account_id, phone, created_at) VALUES (:a, :p, :at)"),
            [{"a": account_id, "p": phone, "at": _db_now(server)} for phone in phones],
        )
        conn.execute(sa.text("UPDATE config_rev SET rev = rev + 1"))
    server.wait_synced()


def _db_now(server: ServerProcess) -> object:
    """Now, as the store writes it: naive UTC text on SQLite, an aware value on PostgreSQL."""
    now = datetime.now(UTC)
    if server.engine.dialect.name == "sqlite":
        return now.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return now


# -- the JSON API -------------------------------------------------------------------------


def bearer(acct: Account) -> dict[str, str]:
    return {"authorization": f"Bearer {acct.api_key}"}


def v1_page(client: httpx.Client, server: ServerProcess, acct: Account, **params: Any) -> Any:
    response = client.get(f"{server.url}/v1/messages", params=params, headers=bearer(acct))
    assert response.status_code == 200, response.text
    return response.json()


def v1_messages(
    client: httpx.Client, server: ServerProcess, acct: Account, **params: Any
) -> list[dict[str, Any]]:
    """Every message matching `params`, newest first, following next_cursor."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        page = v1_page(client, server, acct, **params, **({"cursor": cursor} if cursor else {}))
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("next_cursor never ended")


def settle(
    client: httpx.Client,
    server: ServerProcess,
    acct: Account,
    timeout: float = 10.0,
    **params: Any,
) -> list[dict[str, Any]]:
    """Poll until every matching message is in a final state; the messages."""
    items: list[dict[str, Any]] = wait_for(
        lambda: v1_messages(client, server, acct, **params),
        lambda items: bool(items) and all(m["state"] in FINAL_STATES for m in items),
        timeout,
    )
    return items


# -- a recording relay (to see what a proxied client put on the wire) --------------------


class RecordingRelay:
    """A TCP relay in front of the server that remembers each request's first line.

    Configure a client with the relay as its HTTP proxy: the relay does not interpret the
    request, it passes the bytes on unchanged, so the server receives exactly what the
    client sent (absolute-form target included) and the test can check what that was.
    """

    def __init__(self, server: ServerProcess) -> None:
        self._target = ("127.0.0.1", server.port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.request_lines: list[str] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, client: socket.socket) -> None:
        with client, socket.create_connection(self._target, timeout=10) as upstream:
            client.settimeout(10)
            first = True
            pumps = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
            pumps.start()
            with contextlib.suppress(OSError):
                while data := client.recv(65536):
                    if first:
                        self.request_lines.append(data.split(b"\r\n", 1)[0].decode("latin-1"))
                        first = False
                    upstream.sendall(data)
            with contextlib.suppress(OSError):
                upstream.shutdown(socket.SHUT_WR)
            pumps.join(10)

    def close(self) -> None:
        self._stop.set()
        self._accepter.join(5)
        self._listener.close()
        for thread in self._threads:
            thread.join(5)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def relay(server: ServerProcess) -> Iterator[RecordingRelay]:
    recorder = RecordingRelay(server)
    try:
        yield recorder
    finally:
        recorder.close()
