"""The database side of smsgate, composed: stores and the operator services.

The CLI's admin commands open a Database and nothing else, so they start without
importing the web stack; `app.py` builds the server and workers on top of one.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from smsgate.carriers.kinds import KindCatalog
from smsgate.clock import SystemClock
from smsgate.core.carriers import SIMULATOR
from smsgate.core.targets import TargetPolicy
from smsgate.services.admin import AdminService
from smsgate.services.carrier_admin import CarrierAdmin
from smsgate.services.inbound import InboundService
from smsgate.services.operators import OperatorService
from smsgate.services.policy_admin import PolicyAdmin
from smsgate.settings import Settings
from smsgate.store.admin import SqlAccountStore
from smsgate.store.carriers import SqlCarrierStore
from smsgate.store.console import SqlConsoleStore
from smsgate.store.db import create_engine, ensure_schema
from smsgate.store.inbound import SqlInboundStore
from smsgate.store.messages import SqlMessageStore
from smsgate.store.outcomes import SqlOutcomes
from smsgate.store.policy import SqlPolicyStore


@dataclass
class Database:
    """The database side of one process: stores and the operator services."""

    settings: Settings
    engine: sa.Engine
    store: SqlAccountStore
    policy: SqlPolicyStore
    messages: SqlMessageStore
    admin: AdminService
    policy_admin: PolicyAdmin
    replies: SqlInboundStore
    inbound: InboundService
    carriers: SqlCarrierStore
    carrier_admin: CarrierAdmin
    outcomes: SqlOutcomes
    console: SqlConsoleStore
    operators: OperatorService

    @classmethod
    def open(
        cls, settings: Settings, *, migrate_schema: bool = True, upgrade: bool | None = None
    ) -> Database:
        """``migrate_schema``: migrate a fresh database and refuse one of another version
        (:func:`ensure_schema`). ``upgrade``: migrate an older one too; by default only on
        SQLite, where this is the only node (on PostgreSQL `smsgate migrate` does it)."""
        engine = create_engine(settings.sqlalchemy_url)
        if migrate_schema:
            if upgrade is None:
                upgrade = engine.dialect.name == "sqlite"
            try:
                ensure_schema(engine, upgrade_older=upgrade)
            except BaseException:
                engine.dispose()
                raise
        store, policy = SqlAccountStore(engine), SqlPolicyStore(engine)
        replies = SqlInboundStore(engine)
        carriers = SqlCarrierStore(engine)
        clock = SystemClock()
        console = SqlConsoleStore(engine)
        return cls(
            settings,
            engine,
            store,
            policy,
            SqlMessageStore(engine),
            AdminService(store, clock, TargetPolicy.parse(settings.push_allowed_targets)),
            PolicyAdmin(policy, clock),
            replies,
            InboundService(replies, clock, settings.service_number),
            carriers,
            CarrierAdmin(carriers, KindCatalog(), clock, builtin=(SIMULATOR,)),
            SqlOutcomes(engine),
            console,
            OperatorService(console, clock),
        )

    def close(self) -> None:
        self.engine.dispose()
