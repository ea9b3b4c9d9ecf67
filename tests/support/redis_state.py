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

REDIS_URL = os.environ.get("SMSGATE_TEST_REDIS_URL")
REDIS_SKIP_REASON = "Redis: set SMSGATE_TEST_REDIS_URL to run"


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
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
