"""Reply intake on a real database (SQLite and PostgreSQL): matching, push rows, opt-outs,
re-push, and the carrier path (simulator -> dispatcher -> intake)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import sqlalchemy as sa

from smsgate import errors
from smsgate.carriers.simulator import SimulatorCarrier, SimulatorConfig
from smsgate.core.messages import Charge, Kind
from smsgate.core.replies import IncomingReply, ReplyFilter
from smsgate.core.states import PushState
from smsgate.services.admin import AdminService
from smsgate.services.dispatch import Dispatcher, DispatchSettings
from smsgate.services.inbound import InboundService
from smsgate.store import tables as t
from smsgate.store.inbound import SqlInboundStore
from smsgate.store.messages import SqlMessageStore
from tests.support.clock import ManualClock

SERVICE = "106900"
PHONE = "13800138000"


@pytest.fixture
def inbound(replies: SqlInboundStore, clock: ManualClock) -> InboundService:
    return InboundService(replies, clock, service_number=SERVICE)


def account(admin: AdminService, name: str, ext_code: str | None = None) -> int:
    admin.create_account(name, "secret-pw", 100)
    admin.configure(name, mo_url="http://127.0.0.1:9/mo", ext_code=ext_code)
    return admin.show(name).account.id


def sent(engine: sa.Engine, account_id: int, phone: str, clock: ManualClock) -> None:
    """A message the account sent to ``phone`` now (the recent-sender rule reads these)."""
    charge = Charge(
        account_id,
        "general",
        Kind.SMS,
        (phone,),
        "【签名】hi",
        1,
        1,
        "simulator",
        "127.0.0.1",
        clock.now(),
    )
    assert SqlMessageStore(engine).write_charges([charge]) != [None]


def reply(clock: ManualClock, dest: str | None, content: str = "好的", phone: str = PHONE):
    return IncomingReply("simulator", phone, dest, content, clock.now())


# -- matching --------------------------------------------------------------------------


def test_extended_code_in_the_destination_wins(
    inbound: InboundService, admin: AdminService, engine: sa.Engine, clock: ManualClock
) -> None:
    alice = account(admin, "alice", ext_code="12")
    bob = account(admin, "bob")
    sent(engine, bob, PHONE, clock)  # bob sent last, but the code names alice
    got = inbound.receive(reply(clock, SERVICE + "12"))
    assert (got.account, got.matched_by) == ("alice", "ext_code")
    assert got.push_state is PushState.PENDING
    assert got.next_at == clock.now()
    assert alice != bob


def test_longest_extended_code_that_starts_the_suffix(
    inbound: InboundService, admin: AdminService, clock: ManualClock
) -> None:
    account(admin, "short", ext_code="12")
    account(admin, "long", ext_code="123")
    assert inbound.receive(reply(clock, SERVICE + "12345")).account == "long"
    assert inbound.receive(reply(clock, SERVICE + "129")).account == "short"
    assert inbound.receive(reply(clock, SERVICE + "123")).account == "long"


def test_a_destination_outside_the_service_number_carries_no_code(
    inbound: InboundService, admin: AdminService, clock: ManualClock
) -> None:
    account(admin, "alice", ext_code="12")
    got = inbound.receive(reply(clock, "99999912"))
    assert got.account is None


def test_most_recent_sender_within_72_hours(
    inbound: InboundService, admin: AdminService, engine: sa.Engine, clock: ManualClock
) -> None:
    older = account(admin, "older")
    newer = account(admin, "newer")
    sent(engine, older, PHONE, clock)
    clock.advance(3600)
    sent(engine, newer, PHONE, clock)
    clock.advance(71 * 3600)
    # The carrier writes the sender with a country code; messages store 11 digits.
    got = inbound.receive(reply(clock, SERVICE, phone="+86" + PHONE))
    assert (got.account, got.matched_by, got.phone) == ("newer", "recent", PHONE)
    clock.advance(3601)  # now 72 h and 1 s after the newer send
    assert inbound.receive(reply(clock, SERVICE, phone="86" + PHONE)).account is None


def test_an_unknown_extended_code_falls_back_to_the_last_sender(
    inbound: InboundService, admin: AdminService, engine: sa.Engine, clock: ManualClock
) -> None:
    bob = account(admin, "bob")
    sent(engine, bob, PHONE, clock)
    got = inbound.receive(reply(clock, SERVICE + "777"))
    assert (got.account, got.matched_by) == ("bob", "recent")


def test_unmatched_replies_are_kept_and_visible_without_a_push(
    inbound: InboundService, replies: SqlInboundStore, clock: ManualClock
) -> None:
    got = inbound.receive(reply(clock, None, "谁？"))
    assert got.account is None
    assert got.push_state is None
    listed = inbound.replies(ReplyFilter(unmatched=True))
    assert [(r.id, r.content) for r in listed] == [(got.id, "谁？")]
    with replies.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.pushes)).scalar_one() == 0


def test_the_push_row_is_written_with_the_reply(
    inbound: InboundService, admin: AdminService, replies: SqlInboundStore, clock: ManualClock
) -> None:
    account(admin, "alice", ext_code="5")
    got = inbound.receive(reply(clock, SERVICE + "5"))
    with replies.engine.connect() as conn:
        row = conn.execute(sa.select(t.pushes).where(t.pushes.c.mo_id == got.id)).one()
    assert (row.state, row.attempts, row.series, row.claimed_by) == ("pending", 0, 1, None)


# -- opt-out -----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["TD", " 退订。", "n", "Ｒ"])
def test_an_optout_keyword_opts_the_number_out_and_is_still_pushed(
    text: str,
    inbound: InboundService,
    admin: AdminService,
    engine: sa.Engine,
    clock: ManualClock,
) -> None:
    alice = account(admin, "alice", ext_code="8")
    with engine.connect() as conn:
        rev = conn.execute(sa.select(t.config_rev.c.rev)).scalar_one()
    got = inbound.receive(reply(clock, SERVICE + "8", text))
    assert got.optout
    assert got.push_state is PushState.PENDING
    assert got.content == text
    with engine.connect() as conn:
        optouts = conn.execute(sa.select(t.optouts.c.account_id, t.optouts.c.phone)).all()
        assert conn.execute(sa.select(t.config_rev.c.rev)).scalar_one() == rev + 1
    assert [tuple(r) for r in optouts] == [(alice, PHONE)]
    inbound.receive(reply(clock, SERVICE + "8", text))  # a second TD changes nothing
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.optouts)).scalar_one() == 1


def test_an_ordinary_or_unmatched_reply_opts_nobody_out(
    inbound: InboundService, admin: AdminService, engine: sa.Engine, clock: ManualClock
) -> None:
    account(admin, "alice", ext_code="8")
    assert not inbound.receive(reply(clock, SERVICE + "8", "TD please")).optout
    assert not inbound.receive(reply(clock, None, "TD")).optout
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.optouts)).scalar_one() == 0


# -- re-push -----------------------------------------------------------------------------


def test_repush_starts_a_new_series_only_for_a_finished_push(
    inbound: InboundService, admin: AdminService, engine: sa.Engine, clock: ManualClock
) -> None:
    account(admin, "alice", ext_code="3")
    got = inbound.receive(reply(clock, SERVICE + "3"))
    with pytest.raises(errors.Conflict, match="still being pushed"):
        inbound.repush(got.id)
    with engine.begin() as conn:
        conn.execute(
            t.pushes.update().values(
                state="failed",
                attempts=4,
                last_error="HTTP 500",
                first_attempt_at=clock.now(),
                done_at=clock.now(),
            )
        )
    clock.advance(30)
    again = inbound.repush(got.id, "alice")
    assert (again.push_state, again.attempts, again.series) == (PushState.PENDING, 0, 2)
    assert again.next_at == clock.now()
    assert again.last_error is None


def test_repush_refuses_unmatched_missing_and_other_accounts_replies(
    inbound: InboundService, admin: AdminService, clock: ManualClock
) -> None:
    account(admin, "alice", ext_code="3")
    account(admin, "bob")
    lost = inbound.receive(reply(clock, None))
    mine = inbound.receive(reply(clock, SERVICE + "3"))
    with pytest.raises(errors.Conflict, match="unmatched"):
        inbound.repush(lost.id)
    with pytest.raises(errors.NotFound):
        inbound.repush(mine.id + 100)
    with pytest.raises(errors.NotFound):
        inbound.repush(mine.id, "bob")


# -- simulated replies -------------------------------------------------------------------


def test_a_simulated_reply_for_an_account_must_reach_that_account(
    inbound: InboundService, admin: AdminService, engine: sa.Engine, clock: ManualClock
) -> None:
    alice = account(admin, "alice")
    with pytest.raises(errors.InvalidInput, match="would not reach this account"):
        inbound.simulate(PHONE, "hi", inbound.dest_for(None), for_account=alice)
    assert inbound.replies(ReplyFilter()) == []
    sent(engine, alice, PHONE, clock)
    got = inbound.simulate(PHONE, "hi", inbound.dest_for(None), for_account=alice)
    assert got.account == "alice"
    with pytest.raises(errors.InvalidInput, match="not a phone number"):
        inbound.simulate("hello", "hi")


def test_the_simulator_carrier_hands_replies_to_intake_through_the_dispatcher(
    inbound: InboundService, admin: AdminService, engine: sa.Engine, clock: ManualClock
) -> None:
    account(admin, "alice", ext_code="42")

    async def take(r: IncomingReply) -> None:
        await asyncio.to_thread(inbound.receive, r)

    async def scenario() -> None:
        simulator = SimulatorCarrier(SimulatorConfig())
        dispatcher = Dispatcher(
            SqlMessageStore(engine),
            {"simulator": simulator},
            clock,
            DispatchSettings(node="n1"),
            replies=take,
        )
        await simulator.start(dispatcher)
        await simulator.inject_reply(PHONE, "收到 & 谢谢", SERVICE + "42")
        await simulator.stop()

    asyncio.run(scenario())
    [got] = inbound.replies(ReplyFilter())
    assert (got.account, got.content, got.carrier) == ("alice", "收到 & 谢谢", "simulator")


def test_received_times_round_trip_exactly(
    inbound: InboundService, admin: AdminService, clock: ManualClock
) -> None:
    """The circuit compares stored failure times with the ones it computed."""
    account(admin, "alice", ext_code="1")
    clock.advance(0.123456)
    got = inbound.receive(reply(clock, SERVICE + "1"))
    assert got.received_at == clock.now()
    assert got.received_at.utcoffset() == timedelta(0)
