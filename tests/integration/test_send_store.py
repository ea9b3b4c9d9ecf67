"""The send path's SQL on a real database (SQLite file and PostgreSQL).

Charging and enqueueing (``write_charges`` and the group-commit writer), the outbox claim,
what a carrier answered (``record_submits``), expiry, crash recovery (``unknown``) and
delivery reports. Every money movement is checked against the ledger: the balance is the
ledger sum and ``sent`` is the units charged net of refunds.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa

from smsgate.core.messages import Charge, DeliveryReport, Kind, SubmitResult
from smsgate.core.states import MessageState
from smsgate.services.admin import AdminService
from smsgate.store import tables as t
from smsgate.store.admin import SqlAccountStore
from smsgate.store.messages import SqlMessageStore
from smsgate.store.writer import GroupCommitWriter
from tests.support.clock import ManualClock

S = MessageState
SIM = "simulator"
PHONES = tuple(f"1380013{n:04d}" for n in range(100))


# -- helpers ------------------------------------------------------------------------------


class Accounts:
    """Accounts created through the admin service, by name, with their ids."""

    def __init__(self, admin: AdminService, store: SqlAccountStore) -> None:
        self._admin = admin
        self._store = store
        self.ids: dict[str, int] = {}

    def create(self, name: str, balance: int) -> int:
        self._admin.create_account(name, "secret123", balance=balance)
        self.ids[name] = self._store.account_info(name).account.id
        return self.ids[name]

    def money(self, name: str) -> tuple[int, int]:
        """(balance, sent), checking the balance against the ledger on the way."""
        info = self._store.account_info(name)
        assert info.balance == self._store.ledger_sum(name), f"{name}: balance != ledger sum"
        return info.balance, info.sent


@pytest.fixture
def accounts(admin: AdminService, store: SqlAccountStore) -> Accounts:
    return Accounts(admin, store)


def charge(
    clock: ManualClock,
    account_id: int,
    phones: tuple[str, ...],
    *,
    content: str = "【短信宝】验证码 1234",
    units: int = 1,
    price: int = 1,
    carrier: str = SIM,
) -> Charge:
    return Charge(
        account_id=account_id,
        product_id="general",
        kind=Kind.SMS,
        phones=phones,
        content=content,
        units=units,
        price=price,
        carrier=carrier,
        client_ip="127.0.0.1",
        at=clock.now(),
    )


def rows(engine: sa.Engine, query: sa.Select[tuple[object, ...]]) -> list[sa.RowMapping]:
    with engine.connect() as conn:
        return list(conn.execute(query).mappings())


def message_rows(engine: sa.Engine, batch_id: int | None = None) -> list[sa.RowMapping]:
    query = sa.select(t.messages).order_by(t.messages.c.id)
    if batch_id is not None:
        query = query.where(t.messages.c.batch_id == batch_id)
    return rows(engine, query)


def message(engine: sa.Engine, message_id: int) -> sa.RowMapping:
    return rows(engine, sa.select(t.messages).where(t.messages.c.id == message_id))[0]


def outbox(engine: sa.Engine) -> dict[int, sa.RowMapping]:
    return {r["message_id"]: r for r in rows(engine, sa.select(t.outbox))}


def ledger(engine: sa.Engine, account_id: int) -> list[tuple[int, str, str | None]]:
    query = (
        sa.select(t.ledger.c.delta, t.ledger.c.kind, t.ledger.c.ref)
        .where(t.ledger.c.account_id == account_id)
        .order_by(t.ledger.c.id)
    )
    with engine.connect() as conn:
        return [(int(d), k, r) for d, k, r in conn.execute(query)]


def enqueue(
    messages: SqlMessageStore,
    clock: ManualClock,
    account_id: int,
    n: int,
    *,
    content: str = "【短信宝】验证码 1234",
    units: int = 1,
    price: int = 1,
) -> list[int]:
    """Write one batch of ``n`` messages; return their ids."""
    request = charge(clock, account_id, PHONES[:n], content=content, units=units, price=price)
    (batch_id,) = messages.write_charges([request])
    assert batch_id is not None
    return [r["id"] for r in message_rows(messages.engine, batch_id)]


# -- write_charges: one transaction, each debit conditional on its own balance -----------


def test_write_charges_commits_the_payable_and_leaves_the_short_one_untouched(
    messages: SqlMessageStore, accounts: Accounts, clock: ManualClock, engine: sa.Engine
) -> None:
    rich = accounts.create("rich", 100)
    poor = accounts.create("poor", 2)
    other = accounts.create("other", 50)
    batch = [
        charge(clock, rich, PHONES[:3]),  # 3 x 1 unit
        charge(clock, poor, PHONES[:3]),  # 3 units, has 2: refused alone
        charge(clock, other, PHONES[3:5], units=2, price=3),  # 2 x 2 units x price 3
    ]

    results = messages.write_charges(batch)

    assert results[1] is None
    rich_batch, other_batch = results[0], results[2]
    assert rich_batch is not None
    assert other_batch is not None
    assert rich_batch != other_batch
    batches = {r["id"]: r for r in rows(engine, sa.select(t.batches))}
    assert set(batches) == {rich_batch, other_batch}
    assert (batches[rich_batch]["numbers"], batches[rich_batch]["cost"]) == (3, 3)
    assert (batches[other_batch]["numbers"], batches[other_batch]["units"]) == (2, 2)
    assert batches[other_batch]["cost"] == 12

    for batch_id, account_id, phones, cost_each in (
        (rich_batch, rich, PHONES[:3], 1),
        (other_batch, other, PHONES[3:5], 6),
    ):
        msgs = message_rows(engine, batch_id)
        assert [m["phone"] for m in msgs] == list(phones)
        assert {m["state"] for m in msgs} == {S.ACCEPTED.value}
        assert {m["account_id"] for m in msgs} == {account_id}
        assert {m["cost"] for m in msgs} == {cost_each}
        assert {m["carrier"] for m in msgs} == {SIM}
        queue = outbox(engine)
        for m in msgs:
            assert queue[m["id"]]["claimed_by"] is None
            assert queue[m["id"]]["available_at"] == clock.now()
            assert queue[m["id"]]["attempts"] == 0

    assert len(message_rows(engine)) == 5
    assert len(outbox(engine)) == 5
    assert ledger(engine, rich) == [
        (100, "topup", "opening balance"),
        (-3, "charge", f"batch:{rich_batch}"),
    ]
    assert ledger(engine, other) == [
        (50, "topup", "opening balance"),
        (-12, "charge", f"batch:{other_batch}"),
    ]
    assert ledger(engine, poor) == [(2, "topup", "opening balance")]
    assert accounts.money("rich") == (97, 3)
    assert accounts.money("other") == (38, 12)
    assert accounts.money("poor") == (2, 0)


def test_write_charges_debits_one_account_in_order_within_a_transaction(
    messages: SqlMessageStore, accounts: Accounts, clock: ManualClock, engine: sa.Engine
) -> None:
    acct = accounts.create("alice", 5)
    results = messages.write_charges(
        [
            charge(clock, acct, PHONES[:3]),
            charge(clock, acct, PHONES[:3]),
            charge(clock, acct, PHONES[:2]),
        ]
    )
    assert results[1] is None
    assert None not in (results[0], results[2])
    assert accounts.money("alice") == (0, 5)
    assert len(message_rows(engine)) == 5
    assert [k for _, k, _ in ledger(engine, acct)] == ["topup", "charge", "charge"]


async def test_group_commit_writer_batches_200_concurrent_requests(
    messages: SqlMessageStore, accounts: Accounts, clock: ManualClock, engine: sa.Engine
) -> None:
    # Five accounts with plenty, one that can pay for exactly 7 of its 40 requests.
    names = [f"acct{i}" for i in range(5)]
    for name in names:
        accounts.create(name, 1000)
    short = accounts.create("short", 14)
    requests: list[tuple[str, Charge]] = []
    for i in range(200):
        if i % 5 == 0:
            requests.append(("short", charge(clock, short, PHONES[i % 50 : i % 50 + 2])))
        else:
            name = names[i % 4]
            requests.append(
                (name, charge(clock, accounts.ids[name], PHONES[i % 90 : i % 90 + 1 + i % 3]))
            )

    commits = 0

    def count_commit(_conn: sa.Connection) -> None:
        nonlocal commits
        commits += 1

    writer = GroupCommitWriter(messages)
    await writer.start()
    sa.event.listen(engine, "commit", count_commit)
    try:
        results = await asyncio.gather(*(writer.write(c) for _, c in requests))
    finally:
        sa.event.remove(engine, "commit", count_commit)
        await writer.stop()

    assert 1 <= commits < len(requests) // 4, f"{commits} commits for {len(requests)} requests"
    short_results = [r for (name, _), r in zip(requests, results, strict=True) if name == "short"]
    assert sum(r is not None for r in short_results) == 7
    assert all(
        r is not None for (name, _), r in zip(requests, results, strict=True) if name != "short"
    )
    batch_ids = [r for r in results if r is not None]
    assert len(set(batch_ids)) == len(batch_ids)

    charged: Counter[str] = Counter()
    numbers = 0
    for (name, c), result in zip(requests, results, strict=True):
        if result is not None:
            charged[name] += c.cost
            numbers += len(c.phones)
            assert [m["phone"] for m in message_rows(engine, result)] == list(c.phones)
    assert len(message_rows(engine)) == numbers == len(outbox(engine))
    for name in [*names, "short"]:
        opening = 14 if name == "short" else 1000
        assert accounts.money(name) == (opening - charged[name], charged[name])
    assert accounts.money("short") == (0, 14)


async def test_a_bad_request_in_a_group_does_not_fail_its_committed_neighbours(
    messages: SqlMessageStore, accounts: Accounts, clock: ManualClock, engine: sa.Engine
) -> None:
    good = accounts.create("good", 100)
    bad = accounts.create("bad", 100)
    # A charge whose own rows the database refuses (here: negative units drive `sent`
    # below zero, so its CHECK constraint fails); it stands for any per-request DBAPIError.
    refused = replace(charge(clock, bad, PHONES[:1]), units=-1)
    writer = GroupCommitWriter(messages, max_wait=0.05)
    await writer.start()
    try:
        answers = await asyncio.gather(
            writer.write(charge(clock, good, PHONES[:1])),
            writer.write(refused),
            writer.write(charge(clock, good, PHONES[1:2])),
            return_exceptions=True,
        )
    finally:
        await writer.stop()
    committed = {r["batch_id"] for r in message_rows(engine)}
    # Whatever each waiter was told must match what the database holds.
    for answer in answers:
        if isinstance(answer, BaseException):
            continue
        assert answer in committed
    answered_ok = {a for a in answers if isinstance(a, int)}
    assert committed == answered_ok, f"committed {committed}, but answered {answers}"
    assert accounts.money("good")[1] == len(answered_ok)
    assert isinstance(answers[1], Exception)


# -- claim ---------------------------------------------------------------------------------


def test_claim_returns_each_row_once(
    messages: SqlMessageStore, accounts: Accounts, clock: ManualClock, engine: sa.Engine
) -> None:
    acct = accounts.create("alice", 1000)
    ids = enqueue(messages, clock, acct, 25)
    seen: list[int] = []
    for node in ("a", "b", "a", "b", "a", "b"):
        claimed = messages.claim(node, 6, clock.now())
        seen += [c.message.id for c in claimed]
        for c in claimed:
            assert outbox(engine)[c.message.id]["claimed_by"] == node
    assert sorted(seen) == ids
    assert messages.claim("c", 100, clock.now()) == []
    assert {message(engine, mid)["state"] for mid in ids} == {S.ACCEPTED.value}


def test_claim_carries_what_the_carrier_needs(
    messages: SqlMessageStore, accounts: Accounts, clock: ManualClock
) -> None:
    acct = accounts.create("alice", 1000)
    enqueue(messages, clock, acct, 2, content="【短信宝】长" * 12, units=2)
    claimed = messages.claim("a", 10, clock.now())
    assert [c.message.phone for c in claimed] == list(PHONES[:2])
    assert {c.message.content for c in claimed} == {"【短信宝】长" * 12}
    assert {(c.message.units, c.message.kind, c.product_id, c.account_id) for c in claimed} == {
        (2, Kind.SMS, "general", acct)
    }
    assert {c.message.ext_code for c in claimed} == {None}
    assert {c.created_at for c in claimed} == {clock.now()}


def test_two_threads_claiming_concurrently_never_share_a_message(
    messages: SqlMessageStore, accounts: Accounts, clock: ManualClock
) -> None:
    acct = accounts.create("alice", 10_000)
    ids: list[int] = []
    for _ in range(4):
        ids += enqueue(messages, clock, acct, 50)
    barrier = threading.Barrier(2)
    got: dict[str, list[int]] = {"a": [], "b": []}
    errors: list[BaseException] = []

    def claimer(node: str) -> None:
        try:
            barrier.wait()
            while claimed := messages.claim(node, 7, clock.now()):
                got[node] += [c.message.id for c in claimed]
        except BaseException as exc:  # reported below, with the thread's node
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in got]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors
    assert not set(got["a"]) & set(got["b"])
    assert sorted(got["a"] + got["b"]) == ids
    assert len(got["a"]) + len(got["b"]) == len(ids)


# SKIP LOCKED is PostgreSQL's; SQLite serialises claims with BEGIN IMMEDIATE.
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_postgres_claim_skips_rows_locked_by_another_claimer(
    database_url: str,
    messages: SqlMessageStore,
    accounts: Accounts,
    clock: ManualClock,
    engine: sa.Engine,
) -> None:
    assert database_url.startswith("postgresql")
    acct = accounts.create("alice", 1000)
    ids = enqueue(messages, clock, acct, 10)
    with engine.connect() as other:
        tx = other.begin()  # another dispatcher mid-claim: holds the first four rows
        locked = list(
            other.execute(
                sa.select(t.outbox.c.message_id)
                .order_by(t.outbox.c.message_id)
                .limit(4)
                .with_for_update()
            ).scalars()
        )
        done = threading.Event()
        result: list[int] = []

        def claim() -> None:
            result.extend(c.message.id for c in messages.claim("b", 100, clock.now()))
            done.set()

        th = threading.Thread(target=claim)
        th.start()
        assert done.wait(10), "claim blocked on rows another transaction holds"
        tx.rollback()
        th.join()
    assert locked == ids[:4]
    assert result == ids[4:]
    assert [c.message.id for c in messages.claim("a", 100, clock.now())] == ids[:4]


# -- record_submits ------------------------------------------------------------------------


def test_accepted_submit_becomes_submitted_and_leaves_the_outbox(
    messages: SqlMessageStore, accounts: Accounts, clock: ManualClock, engine: sa.Engine
) -> None:
    acct = accounts.create("alice", 100)
    (mid,) = enqueue(messages, clock, acct, 1)
    messages.claim("a", 10, clock.now())
    clock.advance(1)
    messages.record_submits([SubmitResult(mid, carrier_ref="ref-1")], clock.now())
    row = message(engine, mid)
    assert (row["state"], row["carrier_ref"]) == (S.SUBMITTED.value, "ref-1")
    assert row["submitted_at"] == clock.now()
    assert row["done_at"] is None
    assert mid not in outbox(engine)
    assert accounts.money("alice") == (99, 1)


def test_refused_submit_fails_and_is_refunded(
    messages: SqlMessageStore, accounts: Accounts, clock: ManualClock, engine: sa.Engine
) -> None:
    acct = accounts.create("alice", 100)
    refused, kept = enqueue(messages, clock, acct, 2, units=2, price=3)
    assert accounts.money("alice") == (88, 12)
    messages.claim("a", 10, clock.now())
    clock.advance(1)
    messages.record_submits(
        [SubmitResult(refused, error="carrier: bad number"), SubmitResult(kept, carrier_ref="r")],
        clock.now(),
    )
    row = message(engine, refused)
    assert (row["state"], row["error"]) == (S.FAILED.value, "carrier: bad number")
    assert row["done_at"] == clock.now()
    assert refused not in outbox(engine)
    assert ledger(engine, acct)[-1] == (6, "refund", f"message:{refused}")
    assert accounts.money("alice") == (94, 6)
    # A repeated failure for the same message refunds nothing more.
    messages.record_submits([SubmitResult(refused, error="again")], clock.now())
    assert accounts.money("alice") == (94, 6)
    assert len([k for _, k, _ in ledger(engine, acct) if k == "refund"]) == 1


def test_throttled_submit_goes_back_to_the_queue_for_later(
    messages: SqlMessageStore, accounts: Accounts, clock: ManualClock, engine: sa.Engine
) -> None:
    acct = accounts.create("alice", 100)
    (mid,) = enqueue(messages, clock, acct, 1)
    assert [c.message.id for c in messages.claim("a", 10, clock.now())] == [mid]
    messages.record_submits([SubmitResult(mid, retry_after=30)], clock.now())
    row = outbox(engine)[mid]
    assert (row["claimed_by"], row["claimed_at"]) == (None, None)
    assert row["available_at"] == clock.now() + timedelta(seconds=30)
    assert message(engine, mid)["state"] == S.ACCEPTED.value
    assert messages.claim("a", 10, clock.now()) == []
    clock.advance(29)
    assert messages.claim("b", 10, clock.now()) == []
    clock.advance(1)
    assert [c.message.id for c in messages.claim("b", 10, clock.now())] == [mid]
    assert outbox(engine)[mid]["attempts"] == 2
    assert accounts.money("alice") == (99, 1)


# -- expiry --------------------------------------------------------------------------------


def test_expire_refunds_unsent_messages_past_validity_but_not_claimed_ones(
    messages: SqlMessageStore, accounts: Accounts, clock: ManualClock, engine: sa.Engine
) -> None:
    acct = accounts.create("alice", 100)
    validity = timedelta(hours=24)
    in_flight = enqueue(messages, clock, acct, 2)
    messages.claim("a", 10, clock.now())  # claimed: a carrier may have it
    stale = enqueue(messages, clock, acct, 3)
    clock.advance(3600)
    fresh = enqueue(messages, clock, acct, 1)
    clock.advance(23 * 3600 + 1)  # stale ones are 24 h + 1 s old, the fresh one 23 h
    assert accounts.money("alice") == (94, 6)

    assert messages.expire(clock.now() - validity, clock.now()) == 3

    for mid in stale:
        row = message(engine, mid)
        assert (row["state"], row["done_at"]) == (S.EXPIRED.value, clock.now())
        assert row["error"] == "not submitted within validity"
        assert mid not in outbox(engine)
    refunds = [(d, r) for d, k, r in ledger(engine, acct) if k == "refund"]
    assert sorted(refunds) == sorted((1, f"message:{mid}") for mid in stale)
    for mid in [*in_flight, *fresh]:
        assert message(engine, mid)["state"] == S.ACCEPTED.value
        assert mid in outbox(engine)
    assert accounts.money("alice") == (97, 3)
    assert messages.expire(clock.now() - validity, clock.now()) == 0
    assert accounts.money("alice") == (97, 3)


# -- crash recovery: in flight -> unknown, never re-sent, never refunded -------------------


def _assert_unknown_for_good(
    messages: SqlMessageStore, engine: sa.Engine, ids: list[int], clock: ManualClock
) -> None:
    for mid in ids:
        row = message(engine, mid)
        assert row["state"] == S.UNKNOWN.value
        assert mid not in outbox(engine)
    clock.advance(7 * 24 * 3600)
    claimed = [c.message.id for c in messages.claim("later", 1000, clock.now())]
    assert not set(claimed) & set(ids)
    messages.expire(clock.now(), clock.now())
    assert {message(engine, mid)["state"] for mid in ids} == {S.UNKNOWN.value}


def test_in_flight_claims_of_other_nodes_become_unknown_on_single_node_start(
    messages: SqlMessageStore, accounts: Accounts, clock: ManualClock, engine: sa.Engine
) -> None:
    acct = accounts.create("alice", 100)
    dead = enqueue(messages, clock, acct, 3)
    assert len(messages.claim("dead-node", 3, clock.now())) == 3
    mine = enqueue(messages, clock, acct, 2)
    assert len(messages.claim("me", 2, clock.now())) == 2
    waiting = enqueue(messages, clock, acct, 2)
    balance_before = accounts.money("alice")
    ledger_before = ledger(engine, acct)

    assert messages.mark_in_flight_unknown(clock.now(), clock.now(), exclude_node="me") == 3

    for mid in mine:
        assert outbox(engine)[mid]["claimed_by"] == "me"
        assert message(engine, mid)["state"] == S.ACCEPTED.value
    for mid in waiting:
        assert outbox(engine)[mid]["claimed_by"] is None
    assert accounts.money("alice") == balance_before == (93, 7)
    assert ledger(engine, acct) == ledger_before  # not refunded: the carrier may have it
    assert {message(engine, m)["error"] for m in dead} == {"in flight when the dispatcher stopped"}
    assert [c.message.id for c in messages.claim("me", 100, clock.now())] == waiting
    _assert_unknown_for_good(messages, engine, dead, clock)
    assert accounts.money("alice") == (93, 7)


def test_claims_older_than_the_lease_become_unknown(
    messages: SqlMessageStore, accounts: Accounts, clock: ManualClock, engine: sa.Engine
) -> None:
    acct = accounts.create("alice", 100)
    lease = timedelta(seconds=120)
    old = enqueue(messages, clock, acct, 3)
    messages.claim("node-a", 3, clock.now())
    clock.advance(60)
    recent = enqueue(messages, clock, acct, 2)
    messages.claim("node-b", 2, clock.now())
    clock.advance(70)  # node-a's claims are 130 s old, node-b's 70 s

    assert messages.mark_in_flight_unknown(clock.now() - lease, clock.now()) == 3

    for mid in recent:
        assert message(engine, mid)["state"] == S.ACCEPTED.value
        assert outbox(engine)[mid]["claimed_by"] == "node-b"
    assert messages.mark_in_flight_unknown(clock.now() - lease, clock.now()) == 0
    assert accounts.money("alice") == (95, 5)
    _assert_unknown_for_good(messages, engine, old, clock)
    # node-b's claims were 7 days old by then; the lease form takes them now.
    assert messages.mark_in_flight_unknown(clock.now() - lease, clock.now()) == 2
    assert accounts.money("alice") == (95, 5)


# -- delivery reports ---------------------------------------------------------------------


@pytest.fixture
def submitted(messages: SqlMessageStore, accounts: Accounts, clock: ManualClock) -> list[int]:
    """Three messages of `alice` (balance 100), submitted with refs ref-0, ref-1, ref-2."""
    acct = accounts.create("alice", 100)
    ids = enqueue(messages, clock, acct, 3)
    messages.claim("a", 10, clock.now())
    messages.record_submits(
        [SubmitResult(mid, carrier_ref=f"ref-{i}") for i, mid in enumerate(ids)], clock.now()
    )
    return ids


def report(
    clock: ManualClock, ref: str, state: MessageState, error: str | None = None
) -> DeliveryReport:
    return DeliveryReport(SIM, ref, state, error, clock.now())


def test_reports_settle_submitted_messages(
    messages: SqlMessageStore,
    submitted: list[int],
    accounts: Accounts,
    clock: ManualClock,
    engine: sa.Engine,
) -> None:
    clock.advance(5)
    assert messages.apply_report(report(clock, "ref-0", S.DELIVERED))
    assert messages.apply_report(report(clock, "ref-1", S.UNDELIVERED, "UNDELIV:dead number"))
    first, second, third = (message(engine, mid) for mid in submitted)
    assert (first["state"], first["error"], first["done_at"]) == (
        S.DELIVERED.value,
        None,
        clock.now(),
    )
    assert (second["state"], second["error"]) == (S.UNDELIVERED.value, "UNDELIV:dead number")
    assert third["state"] == S.SUBMITTED.value
    # Once submitted, the carrier has it: an undelivered message is not refunded.
    assert accounts.money("alice") == (97, 3)


def test_duplicate_and_stray_reports_are_ignored(
    messages: SqlMessageStore, submitted: list[int], clock: ManualClock, engine: sa.Engine
) -> None:
    assert messages.apply_report(report(clock, "ref-0", S.DELIVERED))
    clock.advance(1)
    assert not messages.apply_report(report(clock, "ref-0", S.DELIVERED))
    assert not messages.apply_report(report(clock, "ref-0", S.UNDELIVERED, "late"))
    assert not messages.apply_report(report(clock, "no-such-ref", S.DELIVERED))
    other_carrier = DeliveryReport("smpp-1", "ref-1", S.DELIVERED, None, clock.now())
    assert not messages.apply_report(other_carrier)
    row = message(engine, submitted[0])
    assert (row["state"], row["error"]) == (S.DELIVERED.value, None)
    assert row["done_at"] == clock.now() - timedelta(seconds=1)
    assert message(engine, submitted[1])["state"] == S.SUBMITTED.value


def test_a_late_report_settles_an_unknown_message(
    messages: SqlMessageStore,
    submitted: list[int],
    accounts: Accounts,
    clock: ManualClock,
    engine: sa.Engine,
) -> None:
    # submitted -> unknown (allowed by the state machine): the ref is known, the outcome not.
    with engine.begin() as conn:
        conn.execute(
            t.messages.update()
            .where(t.messages.c.id.in_(submitted[:2]))
            .values(state=S.UNKNOWN.value)
        )
    clock.advance(600)
    assert messages.apply_report(report(clock, "ref-0", S.DELIVERED))
    assert messages.apply_report(report(clock, "ref-1", S.FAILED, "expired at SMSC"))
    assert message(engine, submitted[0])["state"] == S.DELIVERED.value
    assert message(engine, submitted[1])["state"] == S.FAILED.value
    assert not messages.apply_report(report(clock, "ref-0", S.UNDELIVERED))
    assert accounts.money("alice") == (97, 3)  # unknown -> failed is not refunded


def test_a_slow_node_that_submitted_a_reaped_message_keeps_its_ref_for_the_report(
    messages: SqlMessageStore, accounts: Accounts, clock: ManualClock, engine: sa.Engine
) -> None:
    acct = accounts.create("alice", 100)
    (mid,) = enqueue(messages, clock, acct, 1)
    messages.claim("slow-node", 1, clock.now())
    clock.advance(121)  # the submit hangs past the lease; another node reaps the claim
    assert messages.mark_in_flight_unknown(clock.now() - timedelta(seconds=120), clock.now()) == 1
    messages.record_submits([SubmitResult(mid, carrier_ref="late-ref")], clock.now())
    assert message(engine, mid)["state"] == S.UNKNOWN.value  # still never re-sent
    clock.advance(5)
    assert messages.apply_report(report(clock, "late-ref", S.DELIVERED))
    assert message(engine, mid)["state"] == S.DELIVERED.value
