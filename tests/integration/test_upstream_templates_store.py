"""Mapping approved templates to upstream providers' codes: stored, audited, in the snapshot."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from smsgate import errors
from smsgate.services.admin import AdminService
from smsgate.services.policy_admin import PolicyAdmin
from smsgate.services.snapshot import SnapshotHolder
from smsgate.store.admin import SqlAccountStore
from smsgate.store.policy import SqlPolicyStore
from tests.support.clock import ManualClock

TEXT = "【短信宝】您的验证码是{code}"


@pytest.fixture
def policy(engine: sa.Engine, clock: ManualClock) -> PolicyAdmin:
    return PolicyAdmin(SqlPolicyStore(engine), clock)


def test_mapping_reaches_the_snapshot_only_for_approved_templates(
    engine: sa.Engine, store: SqlAccountStore, admin: AdminService, policy: PolicyAdmin
) -> None:
    admin.create_account("alice", "password1")
    approved = policy.apply_template("alice", "general", TEXT)
    pending = policy.apply_template("alice", "general", "【短信宝】包裹{no}已到")
    policy.review(approved, approve=True)
    policy.set_upstream(approved, "ali", "SMS_1")
    policy.set_upstream(approved, "tc", "449739")
    policy.set_upstream(pending, "ali", "SMS_2")
    snap = SnapshotHolder(store, SqlPolicyStore(engine)).current
    assert {
        c: [(e.template_id, e.code) for e in v] for c, v in snap.upstream_templates.items()
    } == {
        "ali": [(approved, "SMS_1")],
        "tc": [(approved, "449739")],
    }
    assert snap.upstream_templates["ali"][0].template.values("【短信宝】您的验证码是1234") == {
        "code": "1234"
    }


def test_mapping_is_replaced_and_removed_and_moves_the_config_revision(
    store: SqlAccountStore, admin: AdminService, policy: PolicyAdmin
) -> None:
    admin.create_account("alice", "password1")
    template = policy.apply_template("alice", "general", TEXT)
    before = store.config_rev()
    policy.set_upstream(template, "ali", "SMS_1")
    policy.set_upstream(template, "ali", "SMS_9")
    assert policy.upstream_templates() == [(template, "ali", "SMS_9")]
    assert store.config_rev() == before + 2
    policy.set_upstream(template, "ali", None)
    assert policy.upstream_templates() == []


def test_mapping_an_unknown_template_is_refused_and_changes_nothing(
    store: SqlAccountStore, policy: PolicyAdmin
) -> None:
    before = store.config_rev()
    with pytest.raises(errors.NotFound):
        policy.set_upstream(999, "ali", "SMS_1")
    with pytest.raises(errors.InvalidInput):
        policy.set_upstream(1, "ali", "  ")
    assert policy.upstream_templates() == []
    assert store.config_rev() == before
