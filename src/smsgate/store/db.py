"""Engines and migrations: SQLite by default, PostgreSQL by URL, same code for both."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The newest migration. Checking it needs one query and no Alembic import, which keeps
# every CLI command quick; a test keeps it equal to Alembic's own head.
HEAD_REVISION = "0003"


def create_engine(url: str) -> sa.Engine:
    """An engine with the settings smsgate relies on for durability."""
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        sa.event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Python's sqlite3 opens transactions lazily and only for DML; take control so that
    # every transaction starts with BEGIN IMMEDIATE (see _sqlite_begin_immediate).
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # an answered `0` survives a power cut
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin_immediate(conn: sa.Connection) -> None:
    # Writers take the lock up front: a read that later upgrades to a write could fail
    # with SQLITE_BUSY instead of waiting, when the CLI and the server write together.
    # Connections opened through `reading()` only read, and must not block writers.
    if conn.get_execution_options().get("smsgate_readonly"):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def reading(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection for queries only (no write lock on SQLite)."""
    with engine.connect() as conn:
        conn.execution_options(smsgate_readonly=True)
        yield conn


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(engine: sa.Engine) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    from alembic import command

    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def pending_migrations(engine: sa.Engine) -> bool:
    """True when the database is behind the code (or empty)."""
    try:
        with reading(engine) as conn:
            current = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    except sa.exc.DBAPIError:  # no alembic_version table: a fresh database
        return True
    return current != HEAD_REVISION
