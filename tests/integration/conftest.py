from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from smsgate.services.admin import AdminService
from smsgate.store.admin import SqlAccountStore
from smsgate.store.db import create_engine, migrate
from tests.conftest import ManualClock


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    from smsgate.settings import Settings

    eng = create_engine(Settings(database_url=database_url).sqlalchemy_url)
    migrate(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def store(engine: sa.Engine) -> SqlAccountStore:
    return SqlAccountStore(engine)


@pytest.fixture
def admin(store: SqlAccountStore, clock: ManualClock) -> AdminService:
    return AdminService(store, clock)
