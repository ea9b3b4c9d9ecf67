"""Outcomes nobody reported: the report timeout, the simulator re-deriving its pending
reports after a restart, and settling by an operator (a refund never twice)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from smsgate.carriers.simulator import SimulatorCarrier
from smsgate.core.messages import SubmitResult
from smsgate.core.states import MessageState
from smsgate.services.admin import AdminService
from smsgate.store import tables as t
from smsgate.store.admin import SqlAccountStore
from smsgate.store.messages import SqlMessageStore
from smsgate.store.outcomes import SettleFilter, SqlOutcomes
from tests.integration.test_dispatch import (
    CONFIG,
    FINAL,
    OK,
    STALLS,
    dispatching,
    money,
    send,
    settled,
    states,
    wait_until,
)
from tests.support.clock import ManualClock

S = MessageState
pytestmark = pytest.mark.usefixtures("alice")


@pytest.fixture
def outcomes(engine: sa.Engine) -> SqlOutcomes:
    return SqlOutcomes(engine)


@pytest.fixture
def alice(admin: AdminService, store: SqlAccountStore) -> int:
    admin.create_account("alice", "secret123", balance=1000)
    return store.account_info("alice").account.id


def submitted(
    messages: SqlMessageStore, clock: ManualClock, account: int, *phones: str, carrier: str
) -> list[int]:
    """Messages handed to ``carrier`` (claimed and recorded as submitted) at clock.now()."""
    ids = send(messages, clock, account, *phones, carrier=carrier)
    claimed = messages.claim("node", 100, clock.now())
    assert sorted(c.message.id for c in claimed) == ids
    messages.record_submits([SubmitResult(i, carrier_ref=f"ref-{i}") for i in ids], clock.now())
    return ids


def test_no_report_within_the_timeout_becomes_unknown_with_the_reason(
    messages: SqlMessageStore, outcomes: SqlOutcomes, clock: ManualClock, alice: int
) -> None:
    old = submitted(messages, clock, alice, OK[0], carrier="simulator")
    slow = submitted(messages, clock, alice, OK[1], carrier="smpp-a")
    clock.advance(2 * 3600)
    young = submitted(messages, clock, alice, OK[2], carrier="simulator")
    now = clock.now()

    # smpp-a waits 3 h, every other carrier 1 h
    moved = outcomes.time_out_reports(
        {"smpp-a": now - timedelta(hours=3)}, now - timedelta(hours=1), now
    )

    rows = states(messages.engine)
    assert moved == 1
    assert rows[old[0]]["state"] == S.UNKNOWN
    assert rows[old[0]]["error"] == "no delivery report within 1 h of submission"
    assert rows[slow[0]]["state"] == S.SUBMITTED
    assert rows[young[0]]["state"] == S.SUBMITTED
    unknown = outcomes.matching(SettleFilter(state=S.UNKNOWN))
    assert unknown == old


def test_a_late_report_still_settles_a_timed_out_message(
    messages: SqlMessageStore, outcomes: SqlOutcomes, clock: ManualClock, alice: int
) -> None:
    from smsgate.core.messages import DeliveryReport

    (mid,) = submitted(messages, clock, alice, OK[0], carrier="simulator")
    clock.advance(80 * 3600)
    assert outcomes.time_out_reports({}, clock.now() - timedelta(hours=72), clock.now()) == 1
    report = DeliveryReport("simulator", f"ref-{mid}", S.DELIVERED, None, clock.now())
    assert messages.apply_reports([report]) == [True]
    assert states(messages.engine)[mid]["state"] == S.DELIVERED


async def test_the_simulator_re_derives_pending_reports_on_start(
    messages: SqlMessageStore, outcomes: SqlOutcomes, clock: ManualClock, alice: int
) -> None:
    """As after kill -9: messages submitted, their reports only ever in the dead process."""
    held = submitted(messages, clock, alice, *OK, STALLS, carrier="simulator")
    assert outcomes.awaiting_reports("simulator") == [
        (f"ref-{i}", phone) for i, phone in zip(held, (*OK, STALLS), strict=True)
    ]
    carrier = SimulatorCarrier(CONFIG, awaiting=outcomes.awaiting_reports)
    async with dispatching(messages, carrier, clock):
        await wait_until(settled(messages.engine, held[:3]), what="re-derived reports")
    rows = states(messages.engine)
    assert [rows[i]["state"] for i in held[:3]] == [S.DELIVERED] * 3
    assert rows[held[3]]["state"] == S.SUBMITTED  # the stall number: left to the timeout
    assert rows[held[3]]["state"] not in FINAL


def test_settle_failed_with_refund_moves_money_once_and_audits(
    messages: SqlMessageStore,
    outcomes: SqlOutcomes,
    store: SqlAccountStore,
    clock: ManualClock,
    alice: int,
) -> None:
    ids = submitted(messages, clock, alice, *OK, carrier="simulator")
    outcomes.time_out_reports({}, clock.now() + timedelta(seconds=1), clock.now())
    before = money(store)

    first = outcomes.settle(ids[:2], S.FAILED, refund=True, now=clock.now())
    again = outcomes.settle(ids[:2], S.FAILED, refund=True, now=clock.now())
    delivered = outcomes.settle([ids[2], 999_999], S.DELIVERED, refund=False, now=clock.now())

    assert (first.moved, first.refunded, first.refund_units) == (ids[:2], ids[:2], 2)
    assert again.moved == []
    assert again.refunded == []
    assert again.skipped == {ids[0]: "already failed", ids[1]: "already failed"}
    assert delivered.moved == [ids[2]]
    assert delivered.skipped == {999_999: "no such message"}
    assert money(store) == (before[0] + 2, before[1] - 2)
    with messages.engine.connect() as conn:
        refunds = conn.execute(
            sa.select(t.ledger.c.ref).where(t.ledger.c.kind == "refund").order_by(t.ledger.c.ref)
        ).scalars()
        audited = conn.execute(
            sa.select(t.audit.c.subject, t.audit.c.detail).where(
                t.audit.c.action == "message.settle"
            )
        ).all()
    assert list(refunds) == sorted(f"message:{i}" for i in ids[:2])
    assert sorted(audited) == sorted(
        [
            (f"message:{ids[0]}", "unknown -> failed, refund 1"),
            (f"message:{ids[1]}", "unknown -> failed, refund 1"),
            (f"message:{ids[2]}", "unknown -> delivered"),
        ]
    )


def test_concurrent_settles_refund_once(
    messages: SqlMessageStore,
    outcomes: SqlOutcomes,
    store: SqlAccountStore,
    clock: ManualClock,
    alice: int,
) -> None:
    ids = submitted(messages, clock, alice, *OK, carrier="simulator")
    before = money(store)
    start = threading.Barrier(8)
    results = []

    def settle() -> None:
        start.wait()
        results.append(outcomes.settle(ids, S.FAILED, refund=True, now=clock.now()))

    threads = [threading.Thread(target=settle) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(i for r in results for i in r.refunded) == ids
    assert money(store) == (before[0] + len(ids), before[1] - len(ids))


def test_the_ledger_refuses_a_second_refund_of_a_message(
    messages: SqlMessageStore, clock: ManualClock, alice: int
) -> None:
    row = {"account_id": alice, "delta": 1, "kind": "refund", "ref": "message:1", "at": clock.now()}
    with messages.engine.begin() as conn:
        conn.execute(t.ledger.insert().values(**row))
    with pytest.raises(sa.exc.IntegrityError), messages.engine.begin() as conn:
        conn.execute(t.ledger.insert().values(**row))
    with messages.engine.begin() as conn:  # other refunds (a ticket) are not limited
        conn.execute(t.ledger.insert().values(**(row | {"ref": "ticket:7"})))
        conn.execute(t.ledger.insert().values(**(row | {"ref": "ticket:7"})))


def test_settle_refuses_a_refund_of_a_delivered_message(outcomes: SqlOutcomes) -> None:
    from smsgate import errors

    with pytest.raises(errors.InvalidInput):
        outcomes.settle([1], S.DELIVERED, refund=True, now=ManualClock().now())
