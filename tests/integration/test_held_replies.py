"""Replies for a disabled or expired account are held, not pushed: pushed if the account is
active again within the retry window, else failed (listed, re-pushable). An unmatched reply
given an owner (`mo assign`) is pushed once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from smsgate import errors
from smsgate.core.replies import IncomingReply
from smsgate.core.states import PushState
from smsgate.services.admin import AdminService
from smsgate.services.inbound import InboundService
from smsgate.store import tables as t
from smsgate.store.inbound import SqlInboundStore
from tests.integration.test_push import SCHEDULE, Harness
from tests.receivers import Receiver
from tests.support.clock import ManualClock

WINDOW = SCHEDULE.retry_offsets[-1]  # 10 minutes: the schedule's last retry


@pytest.fixture
def ok_receiver() -> Iterator[Receiver]:
    with Receiver("0") as receiver:
        yield receiver


@pytest.fixture
def h(admin: AdminService, replies: SqlInboundStore, clock: ManualClock) -> Harness:
    return Harness(admin, InboundService(replies, clock), replies, clock)


def give_up(h: Harness) -> int:
    """The dispatcher's chore, as app.py wires it."""
    return h.queue.give_up_held(h.clock.now() - WINDOW, h.clock.now())


def test_a_disabled_accounts_reply_is_held_and_pushed_after_re_enable(
    h: Harness, ok_receiver: Receiver
) -> None:
    code = h.account("alice", ok_receiver.url())
    h.admin.configure("alice", enabled=False)
    mo_id = h.reply(code)
    assert h.run_due(h.worker()) == 0
    h.clock.advance(WINDOW.total_seconds() - 60)
    assert give_up(h) == 0
    assert h.state(mo_id) == (PushState.PENDING, 0, 1)
    assert ok_receiver.hits == []

    h.admin.configure("alice", enabled=True)
    assert h.run_due(h.worker()) == 1
    assert h.state(mo_id) == (PushState.SUCCEEDED, 1, 1)
    assert len(ok_receiver.hits) == 1


def test_an_expired_accounts_reply_is_held_too(h: Harness, ok_receiver: Receiver) -> None:
    code = h.account("alice", ok_receiver.url())
    h.admin.configure("alice", expires_at=h.clock.now() - timedelta(days=1))
    mo_id = h.reply(code)
    assert h.run_due(h.worker()) == 0
    h.admin.configure("alice", clear_expiry=True)
    assert h.run_due(h.worker()) == 1
    assert h.state(mo_id) == (PushState.SUCCEEDED, 1, 1)


def test_a_reply_held_past_the_window_fails_and_can_be_re_pushed(
    h: Harness, ok_receiver: Receiver
) -> None:
    code = h.account("alice", ok_receiver.url())
    h.admin.configure("alice", enabled=False)
    mo_id = h.reply(code)
    other = h.reply(h.account("bob", ok_receiver.url()))  # an active account: not touched
    h.clock.advance(WINDOW.total_seconds() + 1)
    assert give_up(h) == 1
    assert h.state(mo_id) == (PushState.FAILED, 0, 1)
    assert "disabled or expired" in (h.inbound.reply(mo_id).last_error or "")
    assert h.state(other) == (PushState.PENDING, 0, 1)

    h.admin.configure("alice", enabled=True)
    assert h.run_due(h.worker()) == 1  # bob's; alice's stays failed until re-pushed
    h.inbound.repush(mo_id)
    assert h.run_due(h.worker()) == 1
    assert h.state(mo_id) == (PushState.SUCCEEDED, 1, 2)


def test_assign_gives_an_unmatched_reply_an_owner_and_pushes_it_once(
    h: Harness, ok_receiver: Receiver
) -> None:
    h.account("alice", ok_receiver.url())
    alice = h.admin.show("alice").account.id
    reply = IncomingReply("simulator", "13900000000", None, "TD", h.clock.now())
    mo_id = h.inbound.receive(reply).id
    assert h.inbound.reply(mo_id).account is None

    assigned = h.inbound.assign(mo_id, alice)
    assert assigned.account == "alice"
    with pytest.raises(errors.Conflict, match="already belongs to alice"):
        h.inbound.assign(mo_id, alice)
    assert h.run_due(h.worker()) == 1
    assert h.run_due(h.worker()) == 0
    assert [hit.c for hit in ok_receiver.hits] == ["TD"]
    assert h.state(mo_id) == (PushState.SUCCEEDED, 1, 1)
    with h.replies.engine.connect() as conn:
        opted = conn.execute(sa.select(t.optouts.c.phone).where(t.optouts.c.account_id == alice))
        assert list(opted.scalars()) == ["13900000000"]


def test_assign_of_a_missing_reply_is_not_found(h: Harness) -> None:
    h.account("alice", None)
    with pytest.raises(errors.NotFound):
        h.inbound.assign(999, h.admin.show("alice").account.id)
