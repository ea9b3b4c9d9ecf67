"""Fixtures of the integration tier: a migrated database (SQLite and PostgreSQL), the
stores on it, the admin service, all on the test's ManualClock (`clock`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from smsgate.services.admin import AdminService
from smsgate.settings import Settings
from smsgate.store.admin import SqlAccountStore
from smsgate.store.db import create_engine, migrate
from smsgate.store.inbound import SqlInboundStore
from smsgate.store.messages import SqlMessageStore
from tests.receivers import RECEIVER_TARGETS
from tests.support.clock import ManualClock


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    eng = create_engine(Settings(database_url=database_url).sqlalchemy_url)
    migrate(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def store(engine: sa.Engine) -> SqlAccountStore:
    return SqlAccountStore(engine)


@pytest.fixture
def messages(engine: sa.Engine) -> SqlMessageStore:
    return SqlMessageStore(engine)


@pytest.fixture
def replies(engine: sa.Engine) -> SqlInboundStore:
    return SqlInboundStore(engine)


@pytest.fixture
def admin(store: SqlAccountStore, clock: ManualClock) -> AdminService:
    return AdminService(store, clock, RECEIVER_TARGETS)
