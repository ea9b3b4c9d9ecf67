"""Test databases: a fresh PostgreSQL database per test or module, when one is configured.

CI sets SMSGATE_TEST_DATABASE_URL (e.g. postgresql://postgres@127.0.0.1/test); without it
the PostgreSQL variants of the tests are skipped. With SMSGATE_TEST_REDIS_URL set too, the
servers started on PostgreSQL keep their counters in Redis (the scale-out configuration),
under a prefix of the database's own, deleted with it.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import sqlalchemy as sa

from tests.support.redis_state import database_prefix, forget_prefix

PG_URL = os.environ.get("SMSGATE_TEST_DATABASE_URL")
PG_SKIP_REASON = "PostgreSQL: set SMSGATE_TEST_DATABASE_URL to run"


def psycopg_url(url: str) -> str:
    """`url` with the psycopg (3) driver named, as SQLAlchemy wants it."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@contextlib.contextmanager
def postgres_database(prefix: str = "smsgate_t") -> Iterator[str]:
    """An empty database on the PG_URL server, dropped on exit; yields its URL."""
    assert PG_URL, PG_SKIP_REASON
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(psycopg_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
        forget_prefix(database_prefix(url))  # the servers' counters on it, if in Redis
