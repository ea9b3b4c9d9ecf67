"""Engines and migrations: SQLite by default, PostgreSQL by URL, same code for both."""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from smsgate import errors

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The newest migration. Checking it needs one query and no Alembic import, which keeps
# every CLI command quick; a test keeps it equal to Alembic's own head.
HEAD_REVISION = "0011"


def create_engine(url: str) -> sa.Engine:
    """An engine with the settings smsgate relies on for durability.

    Statement parameters (phone numbers, content) are kept out of error messages, which
    reach the logs.
    """
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            private_sqlite_file(Path(path))
        engine = sa.create_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        sa.event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    return sa.create_engine(
        url, pool_pre_ping=True, pool_size=10, max_overflow=10, hide_parameters=True
    )


# The database errors that mean "not now" rather than "wrong": a connection refused or lost,
# the pool exhausted, a deadlock or serialisation failure (PostgreSQL), a locked file
# (SQLite). SQLite raises OperationalError for mistakes in SQL too, so there only the
# messages of a busy or unreachable file count.
OUTAGE_ERRORS: tuple[type[Exception], ...] = (
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    sa.exc.TimeoutError,
)
_SQLITE_OUTAGES = ("locked", "busy", "disk i/o", "unable to open", "disk is full")


def outage(exc: BaseException) -> errors.Unavailable | None:
    """The outage ``exc`` stands for (``errors.Unavailable``), or None for any other error."""
    if isinstance(exc, errors.Unavailable):
        return exc
    if not isinstance(exc, OUTAGE_ERRORS):
        return None
    original = getattr(exc, "orig", None) or exc
    reason = (str(original).strip().splitlines() or [type(original).__name__])[0][:200]
    if type(original).__module__ == "sqlite3" and not any(
        word in reason.lower() for word in _SQLITE_OUTAGES
    ):
        return None
    return errors.Unavailable("database", reason)


def private_sqlite_file(path: Path) -> None:
    """The database readable by its owner only: its directory 0700, the file 0600 (made
    so before SQLite opens it; its -wal and -shm files take the same mode); an older
    install's are brought down to these modes."""
    directory = path.parent
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = directory.stat()
    if mode.st_mode & 0o077 and mode.st_uid == os.getuid():
        directory.chmod(0o700)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    for suffix in ("", "-wal", "-shm", "-journal"):
        existing = path.with_name(path.name + suffix)
        if existing.exists() and existing.stat().st_mode & 0o077:
            existing.chmod(0o600)


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


def writing(engine: sa.Engine) -> contextlib.AbstractContextManager[sa.Connection]:
    """A write transaction: committed when the block ends, rolled back if it raises.

    On PostgreSQL this is simply ``engine.begin()``: transactions run concurrently and
    row locks keep them apart. On SQLite every write of the process goes through the
    engine's one :class:`SerialWriter`, which shares transactions between callers.
    """
    if engine.dialect.name != "sqlite":
        return engine.begin()
    return _serial_writer(engine).transaction()


class SerialWriter:
    """Every write transaction of one process on one SQLite database, one at a time.

    SQLite has a single write lock per database. Two connections of one process that
    both want it do not queue: the loser sleeps in SQLite's busy handler, whose back-off
    grows to 100 ms, so throughput collapses and latency explodes exactly under load.
    Here writers queue on an in-process condition instead, and are *grouped*: while one
    caller's block runs, the next callers wait; when the block ends and someone is
    waiting, the transaction stays open and passes to them, and the last caller of the
    group commits for all (one fsync for the lot). Each caller's block runs inside a
    savepoint, so one caller's exception rolls back only its own work. Nobody returns
    before the commit that carries its work; if that commit fails, every member of the
    group gets the error.

    Blocks run on their callers' threads, one after the other on one connection. They
    must not wait for anything but the database. Re-entering from inside a block (a
    store method calling another) nests a savepoint in the same transaction. Other
    processes (the CLI) still meet this one at SQLite's lock, with BEGIN IMMEDIATE and
    the busy timeout.
    """

    def __init__(self, engine: sa.Engine, max_group: int = 64) -> None:
        self._engine = engine
        self._max_group = max_group
        self._cond = threading.Condition()
        self._owner: int | None = None  # thread id of the caller whose block runs now
        self._waiting = 0
        self._group: _Group | None = None

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        me = threading.get_ident()
        group = self._group
        if self._owner == me and group is not None:  # re-entered from inside a block
            with group.conn.begin_nested():
                yield group.conn
            return
        group = self._enter(me)
        # The first caller of a group has nothing of others' to protect: no savepoint.
        # Savepoints are ours, in plain SQL, so that what was undone is never in doubt.
        marked = group.members > 1
        try:
            if marked:
                group.conn.exec_driver_sql(f"SAVEPOINT {_MEMBER}")
            yield group.conn
            if marked:
                group.conn.exec_driver_sql(f"RELEASE SAVEPOINT {_MEMBER}")
        except BaseException as exc:
            self._undo(group, marked, exc)
            raise
        self._leave(group)
        group.committed.wait()
        if group.error is not None:
            raise group.error

    def _enter(self, me: int) -> _Group:
        with self._cond:
            self._waiting += 1
            while self._owner is not None:
                self._cond.wait()
            self._waiting -= 1
            if self._group is None:
                try:
                    self._group = _Group(self._engine)
                except BaseException:  # no connection or no lock: let the next one try
                    self._cond.notify()
                    raise
            self._owner = me
            self._group.members += 1
            return self._group

    def _leave(self, group: _Group) -> None:
        """Pass the open transaction on to a waiting caller, or commit it for all."""
        with self._cond:
            if self._waiting and group.members < self._max_group:
                self._owner = None
                self._cond.notify()
                return
        try:
            group.commit()
        finally:
            self._close(group)

    def _undo(self, group: _Group, marked: bool, exc: BaseException) -> None:
        """A caller's block raised: undo its work alone, or the whole group if it must."""
        if marked:
            try:
                group.conn.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {_MEMBER}")
                group.conn.exec_driver_sql(f"RELEASE SAVEPOINT {_MEMBER}")
            except BaseException:  # the transaction itself is broken: nobody's work stands
                pass
            else:
                self._leave(group)
                return
        group.error = GroupRolledBack(f"rolled back with another write that failed: {exc!r}")
        try:
            group.rollback()
        finally:
            self._close(group)

    def _close(self, group: _Group) -> None:
        with self._cond:
            self._group = None
            self._owner = None
            self._cond.notify()


_MEMBER = "smsgate_member"  # the savepoint around each caller after a group's first


class GroupRolledBack(RuntimeError):
    """Work that was done, then lost with its group's transaction (told to its callers)."""


class _Group:
    """One open transaction and the callers whose work it carries."""

    def __init__(self, engine: sa.Engine) -> None:
        self.conn = engine.connect()
        try:
            self.txn = self.conn.begin()
        except BaseException:
            self.conn.close()
            raise
        self.members = 0
        self.error: BaseException | None = None
        self.committed = threading.Event()

    def commit(self) -> None:
        try:
            self.txn.commit()
        except BaseException as exc:
            self.error = exc.with_traceback(None)
            self._discard()
            raise
        finally:
            self.conn.close()
            self.committed.set()

    def rollback(self) -> None:
        try:
            self._discard()
        finally:
            self.conn.close()
            self.committed.set()

    def _discard(self) -> None:
        """Roll back; a connection that cannot even do that is not given back to the pool."""
        try:
            self.conn.exec_driver_sql("ROLLBACK")
        except Exception:
            self.conn.invalidate()
        with contextlib.suppress(Exception):
            self.txn.rollback()


_WRITERS: weakref.WeakKeyDictionary[sa.Engine, SerialWriter] = weakref.WeakKeyDictionary()
_WRITERS_LOCK = threading.Lock()


def _serial_writer(engine: sa.Engine) -> SerialWriter:
    # One per engine, like the engine's connection pool; made on first use.
    writer = _WRITERS.get(engine)
    if writer is None:
        with _WRITERS_LOCK:
            writer = _WRITERS.setdefault(engine, SerialWriter(engine))
    return writer


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


# Taken by every migration on PostgreSQL: two nodes starting on an empty database, or
# `smsgate migrate` run twice at once, migrate one after the other (the second finds
# nothing left to do). Any constant unique to smsgate will do.
_MIGRATION_LOCK = 0x5_3E5_6A7E


def migrate(engine: sa.Engine) -> None:
    """Bring the schema to the newest revision (idempotent, safe to run concurrently)."""
    from alembic import command

    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def schema_revision(engine: sa.Engine) -> str | None:
    """The database's schema revision; None for a fresh (empty) database."""
    try:
        with reading(engine) as conn:
            current = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    except sa.exc.DBAPIError:  # no alembic_version table: a fresh database
        return None
    return None if current is None else str(current)


def pending_migrations(engine: sa.Engine) -> bool:
    """True when the database is behind the code (or empty)."""
    return schema_revision(engine) != HEAD_REVISION


def ensure_schema(engine: sa.Engine, *, upgrade_older: bool) -> None:
    """Migrate a fresh database; refuse one whose schema is not this version's.

    An older schema is migrated only when ``upgrade_older`` (one node on SQLite, or
    `smsgate migrate`): in a cluster, a node that migrated on its own would change the
    schema under the nodes still running, so the operator does it, once, on purpose.
    """
    from smsgate.errors import SchemaMismatch

    current = schema_revision(engine)
    if current == HEAD_REVISION:
        return
    newer = current is not None and _revision_number(current) > _revision_number(HEAD_REVISION)
    if current is None or (upgrade_older and not newer):
        migrate(engine)
        return
    if newer:
        raise SchemaMismatch(
            f"the database schema is at revision {current}, newer than this smsgate "
            f"understands ({HEAD_REVISION}): upgrade smsgate here to the version the "
            "other nodes run (never run an older version against a migrated database)"
        )
    raise SchemaMismatch(
        f"the database schema is at revision {current}, older than this smsgate "
        f"({HEAD_REVISION}): run `smsgate migrate` once (safe while the other nodes run), "
        "then start this node"
    )


def _revision_number(revision: str) -> int:
    """Revisions are numbered "0001", "0002"...; one that is not is not ours: newer."""
    return int(revision) if revision.isdigit() else 10**9
