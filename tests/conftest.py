"""Shared fixtures: a database per test, on SQLite and (when configured) PostgreSQL.

CI sets SMSGATE_TEST_DATABASE_URL (e.g. postgresql://postgres@127.0.0.1/test); every
test that takes `database_url` then runs on both backends, each in a fresh database.
Helpers live in tests/support/, not here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.clock import ManualClock
from tests.support.databases import PG_SKIP_REASON, PG_URL, postgres_database


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database that lives for one test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'smsgate.db'}"
        return
    if not PG_URL:
        pytest.skip(PG_SKIP_REASON)
    with postgres_database("smsgate_t") as url:
        yield url


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()
