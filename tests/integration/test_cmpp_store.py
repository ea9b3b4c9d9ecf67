"""What the CMPP server owes its customers, on a real database (SQLite file and PostgreSQL):
a report per message and per Msg_Id, due once the message is final, gone once answered;
replies for an account with a CMPP login, written with the reply itself."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from smsgate.core.messages import Charge, DeliveryReport, Kind, SubmitResult
from smsgate.core.replies import NewReply
from smsgate.core.states import MessageState
from smsgate.services.admin import AdminService
from smsgate.store import tables as t
from smsgate.store.admin import SqlAccountStore
from smsgate.store.cmpp import SqlCmppReports
from smsgate.store.inbound import SqlInboundStore
from smsgate.store.messages import SqlMessageStore
from tests.support.clock import ManualClock


def _account(admin: AdminService, store: SqlAccountStore, name: str, sp_id: str | None) -> int:
    admin.create_account(name, "secret123", balance=100)
    if sp_id is not None:
        admin.configure(name, cmpp_sp_id=sp_id, cmpp_secret="shared")
    return store.account_info(name).account.id


def test_reports_due_when_final_and_gone_when_done(
    engine: sa.Engine,
    admin: AdminService,
    store: SqlAccountStore,
    messages: SqlMessageStore,
    clock: ManualClock,
) -> None:
    account_id = _account(admin, store, "cmppco", "300250")
    # Owed with the messages, in the charge's transaction: nothing to lose in between.
    charge = Charge(account_id, "general", Kind.SMS, ("13800138000", "13900139000"),
                    "【短信宝】hi", 1, 1, "simulator", "127.0.0.1", clock.now(),
                    ("c215e3c494da0001", "c215e3c494da0002"))  # fmt: skip
    [batch_id] = messages.write_charges([charge])
    assert isinstance(batch_id, int)
    reports = SqlCmppReports(engine)
    assert reports.due(account_id, 0) == []  # nothing final yet

    claimed = messages.claim("n1", 10, clock.now())
    results = [SubmitResult(c.message.id, carrier_ref=f"r{c.message.id}", carrier="simulator")
               for c in claimed]  # fmt: skip
    messages.record_submits(results, clock.now())
    first = claimed[0].message
    done_at = clock.now() + timedelta(seconds=3)
    report = DeliveryReport("simulator", f"r{first.id}", MessageState.DELIVERED, None, done_at)
    assert messages.apply_reports([report]) == [True]

    due = reports.due(account_id, 0)
    assert [(d.msg_id, d.phone, d.state) for d in due] == [
        ("c215e3c494da0001", first.phone, MessageState.DELIVERED),
        ("c215e3c494da0002", first.phone, MessageState.DELIVERED),
    ]
    assert due[0].done_at == done_at
    reports.done([due[0].row_id])
    assert [d.msg_id for d in reports.due(account_id, 0)] == ["c215e3c494da0002"]
    with engine.connect() as conn:  # the undelivered one is still owed, not yet due
        assert conn.execute(sa.select(sa.func.count()).select_from(t.cmpp_reports)).scalar() == 3


def test_a_charge_refused_for_balance_owes_no_report(
    engine: sa.Engine,
    admin: AdminService,
    store: SqlAccountStore,
    messages: SqlMessageStore,
    clock: ManualClock,
) -> None:
    account_id = _account(admin, store, "poorcmpp", "300252")  # balance 100
    charge = Charge(account_id, "general", Kind.SMS, ("13800138000",), "【短信宝】hi", 1, 101,
                    "simulator", "127.0.0.1", clock.now(), ("c215e3c494da0009",))  # fmt: skip
    assert messages.write_charges([charge]) == [None]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.cmpp_reports)).scalar() == 0


def test_replies_owed_only_to_accounts_with_a_cmpp_login(
    engine: sa.Engine,
    admin: AdminService,
    store: SqlAccountStore,
    replies: SqlInboundStore,
    clock: ManualClock,
) -> None:
    with_login = _account(admin, store, "withcmpp", "300251")
    without = _account(admin, store, "nocmpp", None)
    for account_id, text in ((with_login, "好的"), (without, "收到")):
        replies.add_reply(NewReply("sim", "13800138000", "106900", text, clock.now(),
                                   account_id, "recent", False))  # fmt: skip
    owed = SqlCmppReports(engine)
    due = owed.due_replies(with_login)
    assert [(d.phone, d.dest, d.content) for d in due] == [("13800138000", "106900", "好的")]
    assert owed.due_replies(without) == []
    owed.replies_done([due[0].row_id])
    assert owed.due_replies(with_login) == []
