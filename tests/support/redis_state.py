"""Test Redis: a key prefix of its own per test or module, when one is configured.

CI sets SMSGATE_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/3); without it the Redis
variants of the tests are skipped. With it set and Redis unreachable they fail.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import redis
import sqlalchemy as sa

REDIS_URL = os.environ.get("SMSGATE_TEST_REDIS_URL")
REDIS_SKIP_REASON = "Redis: set SMSGATE_TEST_REDIS_URL to run"


def database_prefix(database_url: str) -> str:
    """The key prefix of the servers on one test database: nodes on the same database
    share their counters, as a cluster's do; no two test databases share any."""
    return f"smsgate-test:{sa.engine.make_url(database_url).database}:"


def redis_env(database_url: str) -> dict[str, str]:
    """The settings that put a server on PostgreSQL onto Redis too (when configured):
    the PostgreSQL variant of every server test is the scale-out configuration."""
    if not REDIS_URL:
        return {}
    return {"SMSGATE_REDIS_URL": REDIS_URL, "SMSGATE_REDIS_PREFIX": database_prefix(database_url)}


def forget_prefix(prefix: str) -> None:
    """Delete every key under ``prefix`` (a test database's, when it is dropped)."""
    if not REDIS_URL:
        return
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@contextlib.contextmanager
def redis_prefix(label: str = "t") -> Iterator[tuple[redis.Redis, str]]:
    """A client for REDIS_URL and a fresh key prefix; the prefix's keys go on exit."""
    assert REDIS_URL, REDIS_SKIP_REASON
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    client.ping()  # unreachable: the test fails here, it is not skipped
    prefix = f"smsgate-test:{label}:{uuid.uuid4().hex[:12]}:"
    try:
        yield client, prefix
    finally:
        client.close()
        forget_prefix(prefix)
