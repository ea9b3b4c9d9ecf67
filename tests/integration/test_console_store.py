"""The console's store on SQLite and PostgreSQL: operators, ApiKeys (revoke), the ledger
and audit trail as read, and messages counted per UTC day and state."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from smsgate import errors
from smsgate.core import actors
from smsgate.services.admin import AdminService
from smsgate.services.operators import OperatorService
from smsgate.store.admin import SqlAccountStore
from smsgate.store.console import SqlConsoleStore
from smsgate.store.messages import SqlMessageStore
from tests.integration.test_send_store import charge
from tests.support.clock import ManualClock


@pytest.fixture
def console(engine: sa.Engine) -> SqlConsoleStore:
    return SqlConsoleStore(engine)


def test_operators_are_created_once_and_verified_by_password(
    console: SqlConsoleStore, clock: ManualClock
) -> None:
    operators = OperatorService(console, clock)
    operators.create("root", "long-password")
    with pytest.raises(errors.Conflict):
        operators.create("root", "another-password")
    with pytest.raises(errors.InvalidInput):
        operators.create("short", "1234567")
    with pytest.raises(errors.InvalidInput):
        operators.create("bad:name", "long-password")
    found = operators.verify("root", "long-password")
    assert found is not None
    assert found.username == "root"
    assert found.password_hash.startswith("$argon2id$")
    assert operators.verify("root", "wrong-password") is None
    assert operators.verify("nobody", "long-password") is None


def test_a_revoked_key_leaves_the_snapshot_and_cannot_be_revoked_twice(
    console: SqlConsoleStore, store: SqlAccountStore, admin: AdminService, clock: ManualClock
) -> None:
    first = admin.create_account("alice", "secret1").api_key
    admin.create_account("bob", "secret1")
    second = admin.new_api_key("alice")
    keys = console.api_keys("alice")
    assert [k.hint for k in keys] == [second[:4], first[:4]]  # newest first
    rev = store.config_rev()
    assert not console.revoke_api_key("bob", keys[0].id, clock.now())  # not bob's
    assert console.revoke_api_key("alice", keys[0].id, clock.now())
    assert not console.revoke_api_key("alice", keys[0].id, clock.now())  # already
    assert store.config_rev() > rev  # running servers reload and forget the key
    alice = next(a for a in store.load_accounts() if a.username == "alice")
    assert len(alice.api_key_hashes) == 1
    assert console.api_keys("alice")[0].revoked_at == clock.now()
    assert admin.show("alice").key_hints == (first[:4],)


def test_ledger_and_audit_read_newest_first(
    console: SqlConsoleStore, admin: AdminService, clock: ManualClock
) -> None:
    admin.create_account("alice", "secret1", balance=10)
    clock.advance(60)
    admin.topup("alice", 5, "invoice-1")
    entries = console.ledger("alice", 10)
    assert [(e.delta, e.kind, e.ref) for e in entries] == [
        (5, "topup", "invoice-1"),
        (10, "topup", "opening balance"),
    ]
    log = console.audit_log(2)
    assert (log[0].actor, log[0].action, log[0].detail) == ("admin", "ledger.topup", "+5")
    older = console.audit_log(100, before_id=log[0].id)
    assert all(e.id < log[0].id for e in older)
    assert older


def test_changes_are_audited_under_whoever_acts(
    console: SqlConsoleStore, admin: AdminService, clock: ManualClock
) -> None:
    """The CLI acts as admin; a console request names its user once (core/actors.py), and
    every row the services write for it carries that name: one row per change."""
    admin.create_account("alice", "secret1", balance=10)

    with actors.acting_as("operator:root"):  # as a console request is served
        admin.topup("alice", 5, "invoice-2")
        admin.configure("alice", enabled=False)
    admin.configure("alice", enabled=True)
    rows = [(e.actor, e.action) for e in reversed(console.audit_log(4))]
    assert rows == [
        ("admin", "apikey.add"),  # the last of the account's creation
        ("operator:root", "ledger.topup"),
        ("operator:root", "account.set"),
        ("admin", "account.set"),
    ]
    assert actors.current() == "admin"  # the name did not outlive its block


def test_messages_are_counted_per_utc_day_and_state(
    engine: sa.Engine, console: SqlConsoleStore, admin: AdminService, clock: ManualClock
) -> None:
    admin.create_account("alice", "secret1", balance=100)
    admin.create_account("bob", "secret1", balance=100)
    infos = {i.account.username: i.account.id for i in admin.accounts()}
    messages = SqlMessageStore(engine)
    clock.advance(23 * 3600 + 59 * 60)  # 2026-01-01 23:59 UTC
    messages.write_charges([charge(clock, infos["alice"], ("13900000001", "13900000002"))])
    clock.advance(120)  # 2026-01-02 00:01 UTC: the next day
    messages.write_charges([charge(clock, infos["alice"], ("13900000003",))])
    messages.write_charges([charge(clock, infos["bob"], ("13900000004",))])
    since = clock.now() - timedelta(days=30)
    counts = {(c.day, c.state): c.count for c in console.daily_counts(infos["alice"], since)}
    assert counts == {(date(2026, 1, 1), "accepted"): 2, (date(2026, 1, 2), "accepted"): 1}
    everyone = console.daily_counts(None, since)
    assert sum(c.count for c in everyone) == 4
    assert console.daily_counts(infos["alice"], clock.now() + timedelta(seconds=1)) == []
