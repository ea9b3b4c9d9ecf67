"""The crash test: `kill -9` the real server in the middle of a stream of sends.

Several client threads send requests (each a distinct content to 1-3 numbers) and
record what each was answered: `0`, another code, or nothing (the connection died).
The server is killed with SIGKILL while messages are being written and dispatched,
restarted on the same database, and left to finish. Then the database must show:

- every request answered `0` has exactly its messages and its debit;
- no request answered with another code has a message or a charge;
- a request left without an answer is either fully there (messages and debit) or not at all;
- the balance is the ledger sum, and `sent` is the cost of the messages not refunded;
- no message exists twice, and none was handed to a carrier twice: messages that were in
  flight at the kill are `unknown` and never submitted again; the others are final, except
  those the simulator had accepted before the kill, whose pending receipt died with it.
"""

from __future__ import annotations

import random
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy as sa

from tests.e2e.server_support import Account, ServerProcess
from tests.support.waiting import wait_for

SENDERS = 8
KILL_AFTER_ACCEPTED = 150  # requests answered `0` before looking for a moment to kill
KILL_AFTER_AT_MOST = 4.0  # seconds of sending, whatever was accepted by then
KILL_WINDOW = 1.0  # how long to look for claims in flight before killing anyway
SETTLE_TIMEOUT = 15.0
FINAL = {"delivered", "undelivered", "failed", "expired"}
NUMBERS = [f"1390000{n:04d}" for n in range(2000)]


@pytest.fixture
def server_env() -> dict[str, str]:
    return {
        "SMSGATE_FREQ_PER_MINUTE": "1000000",
        "SMSGATE_FREQ_PER_HOUR": "1000000",
        "SMSGATE_FREQ_PER_DAY": "1000000",
        "SMSGATE_FREQ_SAME_CONTENT_SECONDS": "0",
        "SMSGATE_SIMULATOR_DELAY_SECONDS": "0.05",
        # PostgreSQL runs as a cluster node: a dead node's claims are reaped after the lease.
        "SMSGATE_CLAIM_LEASE_SECONDS": "2",
    }


@dataclass
class Sent:
    content: str
    phones: tuple[str, ...]
    answer: str | None = None  # the body of a 200 answer; None: no answer


@dataclass
class Stream:
    """Requests sent by client threads until told to stop."""

    server: ServerProcess
    account: Account
    requests: list[Sent] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _next: int = 0

    def _take(self) -> Sent:
        with self._lock:
            i = self._next
            self._next += 1
            rng = random.Random(i)
            sent = Sent(f"【短信宝】测试{i}", tuple(rng.sample(NUMBERS, rng.randint(1, 3))))
            self.requests.append(sent)
            return sent

    def accepted(self) -> int:
        with self._lock:
            return sum(r.answer == "0" for r in self.requests)

    def sender(self) -> None:
        with httpx.Client(base_url=self.server.url, timeout=5.0) as client:
            while not self.stop.is_set():
                sent = self._take()
                params = {
                    "u": self.account.username,
                    "p": self.account.md5,
                    "m": ",".join(sent.phones),
                    "c": sent.content,
                }
                try:
                    response = client.get("/sms", params=params)
                except httpx.HTTPError:
                    return  # no answer: the server died under this request
                if response.status_code == 200:
                    sent.answer = response.text


def _claimed(server: ServerProcess) -> set[int]:
    with server.engine.connect() as conn:
        return set(
            conn.execute(
                sa.text("SELECT message_id FROM outbox WHERE claimed_by IS NOT NULL")
            ).scalars()
        )


def _kill_while_in_flight(stream: Stream) -> tuple[set[int], datetime]:
    """Once the stream is flowing, kill when some claims are outstanding (or after
    KILL_WINDOW); return (the claims seen, when)."""
    server = stream.server
    wait_for(stream.accepted, lambda n: n >= KILL_AFTER_ACCEPTED, KILL_AFTER_AT_MOST, 0.02)
    seen = wait_for(lambda: _claimed(server), timeout=KILL_WINDOW, interval=0)
    killed_at = datetime.now(UTC)
    server.kill()
    return seen, killed_at


def _rows(server: ServerProcess, sql: str, **params: object) -> list[sa.RowMapping]:
    with server.engine.connect() as conn:
        return list(conn.execute(sa.text(sql), params).mappings())


def _settled(server: ServerProcess, killed_at: datetime) -> bool:
    """Nothing queued or claimed, nothing accepted, and `submitted` only from before the kill."""
    if _rows(server, "SELECT message_id FROM outbox"):
        return False
    for row in _rows(server, "SELECT state, submitted_at FROM messages"):
        if row["state"] == "accepted":
            return False
        if row["state"] == "submitted" and _utc(row["submitted_at"]) > killed_at:
            return False
    return True


def _utc(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite through plain SQL: ISO text, stored as UTC
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def test_kill_9_mid_stream_loses_nothing_and_sends_nothing_twice(server: ServerProcess) -> None:
    account = server.create_account(balance=100_000)
    server.cli("signature", "add", account.username, "短信宝")
    server.wait_synced()
    stream = Stream(server, account)
    # One request first: the first login verifies the password hash (argon2, slow), later
    # ones hit the in-memory cache; the stream should be sending, not hashing, at the kill.
    warm_up = Sent("【短信宝】预热", (NUMBERS[0],))
    params = {"u": account.username, "p": account.md5, "m": NUMBERS[0], "c": warm_up.content}
    warm_up.answer = httpx.get(f"{server.url}/sms", params=params, timeout=10).text
    assert warm_up.answer == "0"
    stream.requests.append(warm_up)
    threads = [threading.Thread(target=stream.sender, daemon=True) for _ in range(SENDERS)]
    for th in threads:
        th.start()
    in_flight_seen, killed_at = _kill_while_in_flight(stream)
    stream.stop.set()
    for th in threads:
        th.join(10)
    assert not any(th.is_alive() for th in threads)

    server.start()
    assert wait_for(lambda: _settled(server, killed_at), timeout=SETTLE_TIMEOUT), (
        "messages did not settle after the restart"
    )
    server.stop()

    _check(server, account, stream.requests, in_flight_seen, killed_at)


def _check(
    server: ServerProcess,
    account: Account,
    requests: list[Sent],
    in_flight_seen: set[int],
    killed_at: datetime,
) -> None:
    answers = Counter("none" if r.answer is None else r.answer for r in requests)
    print(
        f"requests {len(requests)}: {dict(answers)}; claims seen at the kill {len(in_flight_seen)}"
    )
    assert answers["0"] >= 50, f"too few requests were accepted before the kill: {answers}"

    messages = _rows(
        server,
        "SELECT m.id, m.batch_id, m.phone, m.content, m.cost, m.state, m.carrier_ref, "
        "m.submitted_at, m.error FROM messages m JOIN accounts a ON a.id = m.account_id "
        "WHERE a.username = :u",
        u=account.username,
    )
    by_content: defaultdict[str, list[sa.RowMapping]] = defaultdict(list)
    for m in messages:
        by_content[m["content"]].append(m)
    ledger = _rows(
        server,
        "SELECT l.delta, l.kind, l.ref FROM ledger l JOIN accounts a ON a.id = l.account_id "
        "WHERE a.username = :u",
        u=account.username,
    )
    charges = Counter(r["ref"] for r in ledger if r["kind"] == "charge")
    charge_delta = {r["ref"]: int(r["delta"]) for r in ledger if r["kind"] == "charge"}
    assert all(n == 1 for n in charges.values()), "a batch was charged twice"

    # Per request: all or nothing, and what the client was told is what happened.
    sent_contents = {r.content for r in requests}
    assert set(by_content) <= sent_contents, "messages nobody sent"
    unanswered_present = 0
    for request in requests:
        rows = by_content.get(request.content, [])
        present = _fully_present(request, rows, charge_delta)
        if request.answer == "0":
            assert present, f"{request} answered 0 but is not (fully) stored: {rows}"
        elif request.answer is not None:
            assert not rows, f"{request} was refused yet has messages"
        else:
            assert present or not rows, f"{request} is half stored: {rows}"
            unanswered_present += present
    batch_ids = {m["batch_id"] for m in messages}
    assert set(charges) == {f"batch:{b}" for b in batch_ids}, "a charge without its messages"
    print(f"unanswered requests found stored: {unanswered_present}")

    # Money: balance = ledger sum; sent = cost of all messages not refunded.
    refunds = {r["ref"]: int(r["delta"]) for r in ledger if r["kind"] == "refund"}
    refunded_ids = {int(ref.removeprefix("message:")) for ref in refunds}
    assert all(m["state"] in ("failed", "expired") for m in messages if m["id"] in refunded_ids)
    (acct,) = _rows(
        server, "SELECT balance, sent FROM accounts WHERE username = :u", u=account.username
    )
    assert acct["balance"] == sum(int(r["delta"]) for r in ledger)
    assert acct["sent"] == sum(int(m["cost"]) for m in messages if m["id"] not in refunded_ids)
    assert acct["sent"] == -sum(charge_delta.values()) - sum(refunds.values())

    # Nothing twice; in flight -> unknown and never submitted again; the rest final.
    pairs = Counter((m["content"], m["phone"]) for m in messages)
    assert max(pairs.values()) == 1, "a message was stored twice"
    refs = [m["carrier_ref"] for m in messages if m["carrier_ref"] is not None]
    assert len(refs) == len(set(refs)), "a carrier reference was reused"
    states = Counter(m["state"] for m in messages)
    print(f"messages {len(messages)}: {dict(states)}")
    for m in messages:
        if m["state"] == "unknown":
            assert m["carrier_ref"] is None
            assert m["submitted_at"] is None
            assert m["error"] == "in flight when the dispatcher stopped"
        elif m["state"] == "submitted":  # accepted by the simulator; its receipt died with it
            assert _utc(m["submitted_at"]) <= killed_at
        else:
            assert m["state"] in FINAL, m
        if m["id"] in in_flight_seen:  # claimed just before the kill: never submitted after
            assert m["state"] == "unknown" or _utc(m["submitted_at"]) <= killed_at, m
        if m["submitted_at"] is not None and _utc(m["submitted_at"]) > killed_at:
            assert m["state"] in FINAL, m  # sent after the restart: the receipt came back
    assert states["delivered"] > 0


def _fully_present(request: Sent, rows: list[sa.RowMapping], charge: dict[str, int]) -> bool:
    if not rows:
        return False
    batches = {m["batch_id"] for m in rows}
    assert len(batches) == 1, f"{request} stored as {len(batches)} batches"
    (batch_id,) = batches
    assert sorted(m["phone"] for m in rows) == sorted(request.phones), f"{request}: {rows}"
    cost = sum(int(m["cost"]) for m in rows)
    assert charge.get(f"batch:{batch_id}") == -cost, f"{request}: messages without their debit"
    return True
