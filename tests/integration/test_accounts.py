"""Accounts, ledger and admin rules on a real database (SQLite file and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from smsgate import errors
from smsgate.core import passwords
from smsgate.core.accounts import LedgerKind, Product, api_key_hash, password_md5
from smsgate.services.admin import AdminService
from smsgate.store import tables as t
from smsgate.store.admin import SqlAccountStore


def test_create_account_stores_only_hashes(admin: AdminService, engine: sa.Engine) -> None:
    created = admin.create_account("alice", "secret123", balance=50)
    with engine.connect() as conn:
        row = conn.execute(sa.select(t.accounts)).mappings().one()
        key_row = conn.execute(sa.select(t.api_keys)).mappings().one()
    assert row["password_hash"].startswith("$argon2id$")
    assert password_md5("secret123") not in row["password_hash"]
    assert passwords.verify_md5(row["password_hash"], password_md5("secret123").upper())
    assert key_row["key_hash"] == api_key_hash(created.api_key)
    assert created.api_key not in str(dict(key_row))
    assert len(created.api_key) == 32


def test_duplicate_account_is_a_conflict(admin: AdminService) -> None:
    admin.create_account("alice", "secret123")
    with pytest.raises(errors.Conflict):
        admin.create_account("alice", "other-pass")


@pytest.mark.parametrize("name", ["", "a b", "x" * 65, "名字", "a/b"])
def test_bad_usernames_are_refused(admin: AdminService, name: str) -> None:
    with pytest.raises(errors.InvalidInput):
        admin.create_account(name, "secret123")


def test_balance_is_the_ledger_sum(admin: AdminService, store: SqlAccountStore) -> None:
    admin.create_account("alice", "secret123", balance=100)
    admin.topup("alice", 25, "INV-1")
    admin.adjust("alice", -20, "goodwill reversal")
    info = admin.show("alice")
    assert info.balance == 105
    assert store.ledger_sum("alice") == 105
    assert info.sent == 0


def test_sent_is_charges_net_of_refunds(store: SqlAccountStore, admin: AdminService) -> None:
    admin.create_account("alice", "secret123", balance=100)
    now = datetime.now(UTC)
    store.post_ledger("alice", -7, LedgerKind.CHARGE, "batch-1", now)
    store.post_ledger("alice", 2, LedgerKind.REFUND, "batch-1", now)
    info = admin.show("alice")
    assert (info.sent, info.balance) == (5, 95)
    assert store.ledger_sum("alice") == 95


@pytest.mark.parametrize("amount", [0, -1, -100, 10**13])
def test_bad_topups_change_nothing(
    admin: AdminService, store: SqlAccountStore, amount: int
) -> None:
    admin.create_account("alice", "secret123", balance=10)
    with pytest.raises(errors.InvalidInput):
        admin.topup("alice", amount)
    assert admin.show("alice").balance == 10
    assert store.ledger_sum("alice") == 10


def test_topup_of_unknown_account(admin: AdminService) -> None:
    with pytest.raises(errors.NotFound):
        admin.topup("nobody", 5)


def test_debit_beyond_balance_is_refused(admin: AdminService, store: SqlAccountStore) -> None:
    admin.create_account("alice", "secret123", balance=10)
    with pytest.raises(errors.InvalidInput):
        admin.adjust("alice", -11, "too much")
    assert admin.show("alice").balance == 10
    assert store.ledger_sum("alice") == 10


def test_database_refuses_negative_balance(admin: AdminService, engine: sa.Engine) -> None:
    admin.create_account("alice", "secret123", balance=10)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(t.accounts.update().values(balance=-1))


@pytest.mark.parametrize("statement", ["UPDATE ledger SET delta = 1000", "DELETE FROM ledger"])
def test_ledger_is_append_only(admin: AdminService, engine: sa.Engine, statement: str) -> None:
    admin.create_account("alice", "secret123", balance=10)
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
        conn.exec_driver_sql(statement)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.sum(t.ledger.c.delta))).scalar_one() == 10


def test_every_change_is_audited_and_bumps_the_revision(
    admin: AdminService, store: SqlAccountStore, engine: sa.Engine
) -> None:
    before = store.config_rev()
    admin.create_account("alice", "secret123")
    admin.allow_ip("alice", ["10.0.0.0/8"])
    admin.configure("alice", mo_url="https://example.com/mo", password="new-secret")
    assert store.config_rev() >= before + 3
    with engine.connect() as conn:
        actions = list(conn.execute(sa.select(t.audit.c.action, t.audit.c.detail)))
    assert ("allowlist.add", "10.0.0.0/8") in actions
    assert not any("new-secret" in (detail or "") for _, detail in actions)


def test_allowlist_v4_and_v6(admin: AdminService) -> None:
    admin.create_account("alice", "secret123")
    added = admin.allow_ip("alice", ["203.0.113.7", "2001:db8::/32", "10.1.2.3/8"])
    assert added == ["203.0.113.7/32", "2001:db8::/32", "10.0.0.0/8"]
    shown = {str(n) for n in admin.show("alice").account.allowlist}
    assert shown == {"203.0.113.7/32", "2001:db8::/32", "10.0.0.0/8"}
    admin.disallow_ip("alice", ["10.0.0.0/8"])
    assert "10.0.0.0/8" not in {str(n) for n in admin.show("alice").account.allowlist}


def test_bad_cidr_changes_nothing(admin: AdminService) -> None:
    admin.create_account("alice", "secret123")
    with pytest.raises(errors.InvalidInput):
        admin.allow_ip("alice", ["10.0.0.0/8", "not-an-ip"])
    assert admin.show("alice").account.allowlist == ()


def test_ext_codes_are_unique(admin: AdminService) -> None:
    admin.create_account("alice", "secret123")
    admin.create_account("bob", "secret123")
    admin.configure("alice", ext_code="01")
    with pytest.raises(errors.Conflict):
        admin.configure("bob", ext_code="01")
    with pytest.raises(errors.InvalidInput):
        admin.configure("bob", ext_code="12ab")


def test_expiry_disable_and_enable(admin: AdminService, clock) -> None:  # type: ignore[no-untyped-def]
    admin.create_account("alice", "secret123")
    admin.configure("alice", expires_at=datetime(2030, 1, 1, tzinfo=UTC), enabled=False)
    account = admin.show("alice").account
    assert account.expires_at == datetime(2030, 1, 1, tzinfo=UTC)
    assert account.status.value == "disabled"
    admin.configure("alice", clear_expiry=True, enabled=True)
    account = admin.show("alice").account
    assert (account.expires_at, account.status.value) == (None, "active")


def test_signatures(admin: AdminService) -> None:
    admin.create_account("alice", "secret123")
    assert admin.add_signature("alice", "短信宝") == "短信宝"
    assert admin.add_signature("alice", "【测试公司】") == "测试公司"
    with pytest.raises(errors.Conflict):
        admin.add_signature("alice", "短信宝")
    for bad in ["ab", "一二三四五六七八九十十", "【】"]:
        with pytest.raises(errors.InvalidInput):
            admin.add_signature("alice", bad)
    assert admin.show("alice").account.signatures == {"短信宝", "测试公司"}


def test_products_default_and_private(admin: AdminService) -> None:
    assert [p.id for p in admin.products()] == ["general"]
    admin.add_product(Product("1001", "Verification", 2, "simulator", True, True))
    with pytest.raises(errors.Conflict):
        admin.add_product(Product("1001", "Again", 1, "simulator", False, False))
    with pytest.raises(errors.InvalidInput):
        admin.add_product(Product("1002", "Free", 0, "simulator", False, False))
    admin.create_account("alice", "secret123")
    admin.grant_products("alice", ["1001"])
    assert admin.show("alice").account.products == {"1001"}
    with pytest.raises(errors.NotFound):
        admin.grant_products("alice", ["nope"])


def test_words(admin: AdminService) -> None:
    assert admin.add_words(["赌博", " 发票 ", "赌博", ""]) == 2
    assert admin.add_words(["发票", "代开"], category="fraud") == 1
    assert admin.words() == sorted([("赌博", "general"), ("发票", "general"), ("代开", "fraud")])
    assert admin.remove_words(["代开"]) == 1
    with pytest.raises(errors.InvalidInput):
        admin.add_words(["x" * 101])
