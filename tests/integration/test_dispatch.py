"""The dispatcher with the real simulator carrier on a real database (SQLite and PostgreSQL).

Messages are charged and queued by ``write_charges`` as the accept path does, then the
dispatcher claims them, submits them to the simulator and records its answers and its
delivery reports. Outcomes are scripted by the simulator's number-suffix knobs.

The dispatcher's time is the test's ManualClock: a retry time or a claim lease passes
when the test advances the clock, not by waiting. Only the simulator's delivery delay
(a few tens of milliseconds) is real.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import timedelta

import pytest
import sqlalchemy as sa

from smsgate.carriers.simulator import SimulatorCarrier, SimulatorConfig
from smsgate.core.accounts import Product
from smsgate.core.messages import Charge, Kind, Outgoing, SubmitResult
from smsgate.core.states import MessageState
from smsgate.services.admin import AdminService
from smsgate.services.dispatch import Dispatcher, DispatchSettings
from smsgate.store import tables as t
from smsgate.store.admin import SqlAccountStore
from smsgate.store.catalog import SqlCatalog
from smsgate.store.messages import SqlMessageStore
from tests.support.clock import ManualClock

S = MessageState
FINAL = {S.DELIVERED.value, S.UNDELIVERED.value, S.FAILED.value, S.EXPIRED.value}
CONFIG = SimulatorConfig(
    delay_seconds=0.05,
    fail_suffix="4444",
    stall_suffix="5555",
    throttle_suffix="6666",
    reject_suffix="7777",
    throttle_retry_seconds=0.2,
)
OK = ("13800138000", "13800138001", "13800138002")
FAILS, STALLS = "13800134444", "13800135555"
THROTTLED, REJECTED = "13800136666", "13800137777"


class CountingSimulator(SimulatorCarrier):
    """The real simulator, counting how often each message id was handed to it."""

    def __init__(self, config: SimulatorConfig = CONFIG) -> None:
        super().__init__(config)
        self.submits: Counter[int] = Counter()

    async def submit(self, batch: Sequence[Outgoing]) -> list[SubmitResult]:
        self.submits.update(m.id for m in batch)
        return await super().submit(batch)


@pytest.fixture
def alice(admin: AdminService, store: SqlAccountStore) -> int:
    admin.create_account("alice", "secret123", balance=1000)
    return store.account_info("alice").account.id


def send(
    messages: SqlMessageStore,
    clock: ManualClock,
    account_id: int,
    *phones: str,
    product: str = "general",
    carrier: str = "simulator",
    units: int = 1,
    price: int = 1,
) -> list[int]:
    """Charge and queue one request; the ids of its messages."""
    (batch_id,) = messages.write_charges(
        [
            Charge(
                account_id=account_id,
                product_id=product,
                kind=Kind.SMS,
                phones=phones,
                content="【短信宝】您的验证码是 4321",
                units=units,
                price=price,
                carrier=carrier,
                client_ip="127.0.0.1",
                at=clock.now(),
            )
        ]
    )
    assert batch_id is not None
    with messages.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(t.messages.c.id)
                .where(t.messages.c.batch_id == batch_id)
                .order_by(t.messages.c.id)
            ).scalars()
        )


def states(engine: sa.Engine) -> dict[int, sa.RowMapping]:
    with engine.connect() as conn:
        return {r["id"]: r for r in conn.execute(sa.select(t.messages)).mappings()}


def money(store: SqlAccountStore, name: str = "alice") -> tuple[int, int]:
    info = store.account_info(name)
    assert info.balance == store.ledger_sum(name)
    return info.balance, info.sent


async def wait_until(
    check: Callable[[], bool], timeout: float = 5.0, what: str = "the condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


def settled(engine: sa.Engine, ids: Sequence[int], final: set[str] = FINAL) -> Callable[[], bool]:
    def check() -> bool:
        rows = states(engine)
        return all(rows[i]["state"] in final for i in ids)

    return check


@contextlib.asynccontextmanager
async def dispatching(
    messages: SqlMessageStore,
    carrier: SimulatorCarrier,
    clock: ManualClock,
    *,
    node: str = "node-1",
    single_node: bool = True,
) -> AsyncIterator[Dispatcher]:
    catalog = SqlCatalog(messages.engine)

    def route(product_id: str) -> tuple[str, ...]:
        products = {p.id: p for p in catalog.load_products()}
        return products[product_id].route if product_id in products else ()

    dispatcher = Dispatcher(
        messages,
        {carrier.name: carrier},
        clock,
        DispatchSettings(
            node=node,
            batch_size=50,
            idle_poll_seconds=0.05,
            validity=timedelta(hours=1),
            single_node=single_node,
        ),
        routes=route,
    )
    await dispatcher.start()
    await carrier.start(dispatcher)
    try:
        yield dispatcher
    finally:
        await carrier.stop()
        await dispatcher.stop()


async def test_accepted_messages_are_delivered(
    messages: SqlMessageStore,
    clock: ManualClock,
    alice: int,
    store: SqlAccountStore,
    engine: sa.Engine,
) -> None:
    carrier = CountingSimulator()
    first = send(messages, clock, alice, *OK)
    second = send(messages, clock, alice, "13900139000", units=2)
    ids = first + second
    async with dispatching(messages, carrier, clock) as dispatcher:
        dispatcher.wake()
        await wait_until(settled(engine, ids), what="delivery reports")
    rows = states(engine)
    for mid in ids:
        row = rows[mid]
        assert row["state"] == S.DELIVERED.value
        assert row["carrier_ref"]
        assert row["submitted_at"] is not None
        assert row["done_at"] is not None
        assert row["error"] is None
    assert len({rows[mid]["carrier_ref"] for mid in ids}) == len(ids)
    assert carrier.submits == Counter(ids)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.outbox)).scalar_one() == 0
    assert money(store) == (995, 5)  # delivered: charged, nothing refunded


async def test_fail_suffix_is_undelivered_and_stall_suffix_never_reported(
    messages: SqlMessageStore,
    clock: ManualClock,
    alice: int,
    store: SqlAccountStore,
    engine: sa.Engine,
) -> None:
    ok, dead, stalled = send(messages, clock, alice, OK[0], FAILS, STALLS)
    async with dispatching(messages, CountingSimulator(), clock):
        await wait_until(settled(engine, [ok, dead]), what="delivery reports")
        await asyncio.sleep(CONFIG.delay_seconds * 4)  # the simulator's delay is real time
    rows = states(engine)
    assert rows[ok]["state"] == S.DELIVERED.value
    assert (rows[dead]["state"], rows[dead]["error"]) == (
        S.UNDELIVERED.value,
        "simulator: fail_suffix",
    )
    assert rows[stalled]["state"] == S.SUBMITTED.value  # its receipt never comes
    assert rows[stalled]["carrier_ref"]
    assert money(store) == (997, 3)  # neither is refunded: the carrier took both


async def test_reject_suffix_fails_and_is_refunded(
    messages: SqlMessageStore,
    clock: ManualClock,
    alice: int,
    store: SqlAccountStore,
    engine: sa.Engine,
) -> None:
    ok, refused = send(messages, clock, alice, OK[0], REJECTED, units=3)
    assert money(store) == (994, 6)
    async with dispatching(messages, CountingSimulator(), clock):
        await wait_until(settled(engine, [ok, refused]), what="the submit and the report")
    rows = states(engine)
    assert rows[ok]["state"] == S.DELIVERED.value
    assert rows[refused]["state"] == S.FAILED.value
    assert "reject" in rows[refused]["error"]
    assert rows[refused]["carrier_ref"] is None
    with engine.connect() as conn:
        refunds = conn.execute(
            sa.select(t.ledger.c.delta, t.ledger.c.ref).where(t.ledger.c.kind == "refund")
        ).all()
    assert [tuple(r) for r in refunds] == [(3, f"message:{refused}")]
    assert money(store) == (997, 3)


async def test_throttled_message_is_delivered_after_a_retry(
    messages: SqlMessageStore,
    clock: ManualClock,
    alice: int,
    store: SqlAccountStore,
    engine: sa.Engine,
) -> None:
    carrier = CountingSimulator()
    ok, slow = send(messages, clock, alice, OK[0], THROTTLED)
    async with dispatching(messages, carrier, clock) as dispatcher:
        await wait_until(settled(engine, [ok]), what="the first submit and its report")
        # the clock has not moved: the throttled message waits for its retry time
        assert carrier.submits[slow] == 1
        assert states(engine)[slow]["state"] == S.ACCEPTED.value
        clock.advance(CONFIG.throttle_retry_seconds)
        dispatcher.wake()
        await wait_until(settled(engine, [ok, slow]), what="the retried submit")
    rows = states(engine)
    assert rows[slow]["state"] == S.DELIVERED.value
    assert rows[ok]["state"] == S.DELIVERED.value
    assert carrier.submits == Counter({ok: 1, slow: 2})
    assert money(store) == (998, 2)


async def test_a_product_whose_carrier_does_not_exist_fails_and_refunds(
    messages: SqlMessageStore,
    clock: ManualClock,
    alice: int,
    admin: AdminService,
    store: SqlAccountStore,
    engine: sa.Engine,
) -> None:
    admin.add_product(Product("ghost", "Ghost route", 2, "no-such-carrier", False, False))
    ids = send(
        messages,
        clock,
        alice,
        *OK[:2],
        product="ghost",
        carrier="no-such-carrier",
        units=2,
        price=2,
    )
    good = send(messages, clock, alice, OK[2])
    assert money(store) == (991, 9)
    carrier = CountingSimulator()
    async with dispatching(messages, carrier, clock):
        await wait_until(settled(engine, ids + good), what="the failures and the delivery")
    rows = states(engine)
    for mid in ids:
        assert rows[mid]["state"] == S.FAILED.value
        assert "no carrier named 'no-such-carrier'" in rows[mid]["error"]
    assert rows[good[0]]["state"] == S.DELIVERED.value
    assert set(carrier.submits) == set(good)
    assert money(store) == (999, 1)


async def test_single_node_start_marks_other_nodes_claims_unknown_and_never_sends_them(
    messages: SqlMessageStore,
    clock: ManualClock,
    alice: int,
    store: SqlAccountStore,
    engine: sa.Engine,
) -> None:
    in_flight = send(messages, clock, alice, *OK)
    claimed = messages.claim("dead-node", 10, clock.now())  # then the process died
    assert sorted(c.message.id for c in claimed) == in_flight
    queued = send(messages, clock, alice, "13900139000", "13900139001")
    carrier = CountingSimulator()
    async with dispatching(messages, carrier, clock, node="new-node") as dispatcher:
        await wait_until(settled(engine, queued), what="the queued messages")
        clock.advance(600)  # long after the claims: still never sent
        later = send(messages, clock, alice, "13900139002")  # proof of later rounds
        dispatcher.wake()
        await wait_until(settled(engine, later), what="a message queued later")
    rows = states(engine)
    for mid in in_flight:
        assert rows[mid]["state"] == S.UNKNOWN.value
        assert rows[mid]["carrier_ref"] is None
    for mid in queued + later:
        assert rows[mid]["state"] == S.DELIVERED.value
    assert carrier.submits == Counter(queued + later)
    assert not set(carrier.submits) & set(in_flight)
    assert money(store) == (994, 6)  # unknown is not refunded


async def test_a_cluster_node_leaves_young_claims_of_live_nodes_alone(
    messages: SqlMessageStore, clock: ManualClock, alice: int, engine: sa.Engine
) -> None:
    # single_node=False: another node's claim is someone else's work until its lease ends.
    busy = send(messages, clock, alice, *OK)
    messages.claim("live-node", 10, clock.now())
    queued = send(messages, clock, alice, "13900139000")
    carrier = CountingSimulator()
    settings = DispatchSettings(node="node-2")
    async with dispatching(
        messages, carrier, clock, node="node-2", single_node=False
    ) as dispatcher:
        await wait_until(settled(engine, queued), what="the queued message")
        rows = states(engine)
        assert {rows[mid]["state"] for mid in busy} == {S.ACCEPTED.value}
        # once the lease has ended on the clock, the claims are the dead node's: unknown
        clock.advance(settings.claim_lease.total_seconds() + 1)
        dispatcher.wake()
        await wait_until(settled(engine, busy, {S.UNKNOWN.value}), what="the stale claims")
    assert carrier.submits == Counter(queued)


class SlowWindowSimulator(CountingSimulator):
    """Answers a batch only after the first delivery reports are due.

    Like an SMSC with a window: the receipt for the first message of a batch can arrive
    before the last submit of the batch has been answered.
    """

    async def submit(self, batch: Sequence[Outgoing]) -> list[SubmitResult]:
        results = await super().submit(batch)
        await asyncio.sleep(self._config.delay_seconds * 4)
        return results


async def test_a_report_that_overtakes_the_submit_record_still_settles_the_message(
    messages: SqlMessageStore, clock: ManualClock, alice: int, engine: sa.Engine
) -> None:
    ids = send(messages, clock, alice, *OK)
    async with dispatching(messages, SlowWindowSimulator(), clock):
        await wait_until(settled(engine, ids), timeout=2, what="delivery reports")
    assert {states(engine)[mid]["state"] for mid in ids} == {S.DELIVERED.value}
