"""Shared fixtures: a database per test, on SQLite and (when configured) PostgreSQL.

CI sets SMSGATE_TEST_DATABASE_URL (e.g. postgresql://postgres@127.0.0.1/test); every
test that takes `database_url` then runs on both backends, each in a fresh database.
Helpers live in tests/support/, not here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from smsgate.counters.memory import MemoryCounters, MemoryFrequencyState
from smsgate.counters.redis import Link, RedisCounters, RedisFrequencyState
from smsgate.ports import Counters, FrequencyState
from tests.support.clock import ManualClock
from tests.support.databases import PG_SKIP_REASON, PG_URL, postgres_database
from tests.support.redis_state import REDIS_SKIP_REASON, REDIS_URL, redis_prefix


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


@pytest.fixture(params=["memory", "redis"])
def rate_state(request: pytest.FixtureRequest) -> Iterator[tuple[FrequencyState, Counters]]:
    """The rate limits' memory, in-process and (when configured) in Redis: the same
    tests hold for both."""
    if request.param == "memory":
        yield MemoryFrequencyState(), MemoryCounters()
        return
    if not REDIS_URL:
        pytest.skip(REDIS_SKIP_REASON)
    with redis_prefix() as (client, prefix):
        link = Link(client)
        yield RedisFrequencyState(link, prefix), RedisCounters(link, prefix)


@pytest.fixture
def counters(rate_state: tuple[FrequencyState, Counters]) -> Counters:
    return rate_state[1]


@pytest.fixture
def frequency_state(rate_state: tuple[FrequencyState, Counters]) -> FrequencyState:
    return rate_state[0]
