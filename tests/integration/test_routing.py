"""Routing and carrier outcomes on a real database: failover between the carriers of a
route, messages whose outcome is unknown, and messages sent in several parts.

The carriers here are scripted stand-ins for a remote SMSC (the port's contract is what
is under test: the dispatcher and the store); the real simulator delivers the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from smsgate.carriers.simulator import SimulatorCarrier
from smsgate.core.messages import DeliveryReport, Outgoing, SubmitResult
from smsgate.core.routing import Rules
from smsgate.core.states import MessageState
from smsgate.ports import Carrier, DeliverySink
from smsgate.services.admin import AdminService
from smsgate.services.dispatch import Dispatcher, DispatchSettings
from smsgate.store import tables as t
from smsgate.store.admin import SqlAccountStore
from smsgate.store.messages import SqlMessageStore
from tests.integration.test_dispatch import (
    CONFIG,
    OK,
    money,
    send,
    settled,
    states,
    wait_until,
)
from tests.support.clock import ManualClock

S = MessageState


@pytest.fixture
def alice(admin: AdminService, store: SqlAccountStore) -> int:
    admin.create_account("alice", "secret123", balance=1000)
    return store.account_info("alice").account.id


class Scripted:
    """A carrier that answers every submit the same way and counts what it was handed."""

    def __init__(self, name: str, answer: str) -> None:
        self.name = name
        self.answer = answer
        self.submits: Counter[int] = Counter()

    async def start(self, sink: DeliverySink) -> None:
        pass

    async def stop(self) -> None:
        pass

    def status(self) -> dict[str, object]:
        return {"state": "scripted"}

    async def submit(self, batch: Sequence[Outgoing]) -> list[SubmitResult]:
        self.submits.update(m.id for m in batch)
        if self.answer == "down":
            raise ConnectionError("connection refused")
        if self.answer == "fault":
            return [SubmitResult(m.id, retry_after=0.0, fault=True) for m in batch]
        if self.answer == "unknown":
            return [SubmitResult(m.id, unknown="link dropped before submit_sm_resp") for m in batch]
        # "parts": taken as three parts with ids as an SMSC gives them (leading zeros kept)
        return [
            SubmitResult(
                m.id, carrier_ref=f"0{m.id}01", part_refs=tuple(f"0{m.id}0{i}" for i in (1, 2, 3))
            )
            for m in batch
        ]


class Counting(SimulatorCarrier):
    def __init__(self, name: str) -> None:
        super().__init__(CONFIG, name=name)
        self.submits: Counter[int] = Counter()

    async def submit(self, batch: Sequence[Outgoing]) -> list[SubmitResult]:
        self.submits.update(m.id for m in batch)
        return await super().submit(batch)


@contextlib.asynccontextmanager
async def routed(
    messages: SqlMessageStore,
    clock: ManualClock,
    carriers: Mapping[str, Carrier],
    route: Sequence[str],
    rules: Mapping[str, Rules] | None = None,
) -> AsyncIterator[Dispatcher]:
    dispatcher = Dispatcher(
        messages,
        dict(carriers),
        clock,
        DispatchSettings(node="n1", batch_size=50, idle_poll_seconds=0.05),
        rules=dict(rules or {name: Rules(cooling_seconds=60) for name in carriers}),
        routes=lambda _product: tuple(route),
    )
    await dispatcher.start()
    for carrier in carriers.values():
        await carrier.start(dispatcher)
    try:
        yield dispatcher
    finally:
        for carrier in carriers.values():
            await carrier.stop()
        await dispatcher.stop()


async def test_a_carrier_that_is_down_fails_over_to_the_next_without_sending_twice(
    messages: SqlMessageStore, clock: ManualClock, alice: int, engine: sa.Engine
) -> None:
    ids = send(messages, clock, alice, *OK)
    down, backup = Scripted("a", "down"), Counting("b")
    async with routed(messages, clock, {"a": down, "b": backup}, ["a", "b"]) as dispatcher:
        dispatcher.wake()
        await wait_until(settled(engine, ids), what="delivery through the second carrier")
    rows = states(engine)
    assert {rows[i]["state"] for i in ids} == {S.DELIVERED.value}
    assert {rows[i]["carrier"] for i in ids} == {"b"}
    assert set(down.submits) == set(ids)  # tried once, refused as a whole
    assert backup.submits == Counter(dict.fromkeys(ids, 1))  # each sent exactly once


async def test_an_upstream_fault_fails_over_and_charges_once(
    messages: SqlMessageStore,
    clock: ManualClock,
    alice: int,
    engine: sa.Engine,
    store: SqlAccountStore,
) -> None:
    ids = send(messages, clock, alice, *OK)
    faulty, backup = Scripted("a", "fault"), Counting("b")
    async with routed(messages, clock, {"a": faulty, "b": backup}, ["a", "b"]) as dispatcher:
        dispatcher.wake()
        await wait_until(settled(engine, ids), what="delivery through the second carrier")
    assert {states(engine)[i]["carrier"] for i in ids} == {"b"}
    assert backup.submits == Counter(dict.fromkeys(ids, 1))
    assert money(store) == (1000 - 3, 3)  # charged once, nothing refunded or charged again


async def test_messages_wait_while_every_carrier_of_their_route_cools(
    messages: SqlMessageStore, clock: ManualClock, alice: int, engine: sa.Engine
) -> None:
    ids = send(messages, clock, alice, OK[0])
    faulty = Scripted("a", "fault")
    async with routed(messages, clock, {"a": faulty}, ["a"]) as dispatcher:
        dispatcher.wake()
        await wait_until(lambda: sum(faulty.submits.values()) >= 1, what="the first try")
        await asyncio.sleep(0.3)
    assert faulty.submits[ids[0]] == 1  # cooling: not hammered again
    row = states(engine)[ids[0]]
    assert row["state"] == S.ACCEPTED.value  # still queued, neither failed nor refunded


async def test_a_number_outside_every_carriers_networks_fails_and_is_refunded(
    messages: SqlMessageStore,
    clock: ManualClock,
    alice: int,
    engine: sa.Engine,
    store: SqlAccountStore,
) -> None:
    ids = send(messages, clock, alice, OK[0])  # 138: China Mobile
    unicom_only = Counting("u")
    rules = {"u": Rules(networks=frozenset({"cucc"}))}
    async with routed(messages, clock, {"u": unicom_only}, ["u"], rules) as dispatcher:
        dispatcher.wake()
        await wait_until(settled(engine, ids), what="the refusal")
    row = states(engine)[ids[0]]
    assert row["state"] == S.FAILED.value
    assert row["error"] == "no carrier in the route u serves cmcc numbers"
    assert not unicom_only.submits
    assert money(store) == (1000, 0)


async def test_mainland_only_carrier_with_a_fallback(
    messages: SqlMessageStore, clock: ManualClock, alice: int, engine: sa.Engine
) -> None:
    mobile = send(messages, clock, alice, "13800138000")  # China Mobile
    unicom = send(messages, clock, alice, "13000130000")  # China Unicom
    cmcc, other = Counting("cmcc-link"), Counting("fallback")
    rules = {"cmcc-link": Rules(networks=frozenset({"cmcc"})), "fallback": Rules()}
    carriers = {"cmcc-link": cmcc, "fallback": other}
    async with routed(messages, clock, carriers, ["cmcc-link", "fallback"], rules) as dispatcher:
        dispatcher.wake()
        await wait_until(settled(engine, mobile + unicom), what="both deliveries")
    rows = states(engine)
    assert rows[mobile[0]]["carrier"] == "cmcc-link"
    assert rows[unicom[0]]["carrier"] == "fallback"


async def test_a_submit_never_answered_is_unknown_and_never_sent_again(
    messages: SqlMessageStore, clock: ManualClock, alice: int, engine: sa.Engine
) -> None:
    ids = send(messages, clock, alice, OK[0])
    lost, backup = Scripted("a", "unknown"), Counting("b")
    async with routed(messages, clock, {"a": lost, "b": backup}, ["a", "b"]) as dispatcher:
        dispatcher.wake()
        await wait_until(lambda: states(engine)[ids[0]]["state"] == S.UNKNOWN.value)
        clock.advance(600)
        dispatcher.wake()
        await asyncio.sleep(0.3)
    row = states(engine)[ids[0]]
    assert (row["state"], row["carrier"]) == (S.UNKNOWN.value, "a")
    assert "submit_sm_resp" in row["error"]
    assert lost.submits[ids[0]] == 1
    assert not backup.submits
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.outbox)).scalar() == 0


async def test_a_message_in_parts_settles_when_every_part_has_reported(
    messages: SqlMessageStore, clock: ManualClock, alice: int, engine: sa.Engine
) -> None:
    good, bad = send(messages, clock, alice, OK[0]), send(messages, clock, alice, OK[1])
    carrier = Scripted("p", "parts")
    async with routed(messages, clock, {"p": carrier}, ["p"]) as dispatcher:
        dispatcher.wake()
        await wait_until(settled(engine, good + bad, {S.SUBMITTED.value}), what="the submits")

        async def report(message_id: int, part: int, state: MessageState) -> None:
            ref = f"0{message_id}0{part}"
            error = None if state is S.DELIVERED else "stat:UNDELIV err:001"
            at = datetime.now(UTC)
            # Returns once committed: the row is read right after, without waiting.
            await dispatcher.delivery_report(DeliveryReport("p", ref, state, error, at))

        await report(good[0], 2, S.DELIVERED)
        await report(good[0], 1, S.DELIVERED)
        assert states(engine)[good[0]]["state"] == S.SUBMITTED.value  # a part is missing
        await report(good[0], 1, S.DELIVERED)  # a duplicate changes nothing
        await report(good[0], 3, S.DELIVERED)
        assert states(engine)[good[0]]["state"] == S.DELIVERED.value

        await report(bad[0], 1, S.DELIVERED)
        await report(bad[0], 2, S.UNDELIVERED)
        await report(bad[0], 3, S.DELIVERED)
        row = states(engine)[bad[0]]
        assert row["state"] == S.UNDELIVERED.value
        assert row["error"] == "part 2/3: stat:UNDELIV err:001"
    with engine.connect() as conn:
        parts = (
            conn.execute(
                sa.select(t.message_parts).order_by(
                    t.message_parts.c.message_id, t.message_parts.c.part
                )
            )
            .mappings()
            .all()
        )
    assert [(p["carrier_ref"], p["state"]) for p in parts] == [
        (f"0{good[0]}01", "delivered"),
        (f"0{good[0]}02", "delivered"),
        (f"0{good[0]}03", "delivered"),
        (f"0{bad[0]}01", "delivered"),
        (f"0{bad[0]}02", "undelivered"),
        (f"0{bad[0]}03", "delivered"),
    ]
