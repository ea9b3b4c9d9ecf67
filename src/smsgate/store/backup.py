"""Backups of the SQLite database, and restoring one (PostgreSQL: pg_dump, see docs).

A backup is SQLite's online backup API run in one step: one read transaction, so the
copy is the database as of one instant, and in WAL mode the server's writers are not
held up meanwhile (a step-by-step copy would start over after every write of the
server, and never end under load). The copy is written beside the target, checked
(``quick_check``, a known schema revision), switched out of WAL mode so it is one
self-contained file, made private (0600: it holds password hashes) and renamed into
place; an interrupted backup never leaves a half file under the target's name.

Restoring checks the file the same way, then swaps it in for the data dir's database;
the database it replaces is kept beside it, renamed.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from smsgate import errors

SQLITE_MAGIC = b"SQLite format 3\x00"
SIDECARS = ("-wal", "-shm", "-journal")
Progress = Callable[[int, int], None]  # bytes copied so far, bytes in all


@dataclass(frozen=True, slots=True)
class BackupInfo:
    path: Path
    size: int
    revision: str
    accounts: int
    messages: int


def known_revisions() -> frozenset[str]:
    """Every schema revision this version's migrations know (a backup may be older)."""
    from alembic.script import ScriptDirectory

    from smsgate.store.db import alembic_config

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return frozenset(rev.revision for rev in script.walk_revisions())


def backup(source: Path, target: Path, progress: Progress | None = None) -> BackupInfo:
    """Copy the live database at ``source`` to ``target``, consistently, while it serves."""
    if not source.is_file():
        raise errors.NotFound(f"no database at {source}")
    partial = target.with_name(target.name + ".partial")
    _remove(partial)
    try:
        _copy(source, partial, progress)
        info = inspect(partial)
        _fsync(partial)
        partial.replace(target)
    except BaseException:
        _remove(partial)
        raise
    return BackupInfo(target, target.stat().st_size, info.revision, info.accounts, info.messages)


def inspect(path: Path) -> BackupInfo:
    """What a backup file holds; InvalidInput unless it is an intact smsgate database."""
    if not path.is_file():
        raise errors.InvalidInput(f"no such file: {path}")
    with path.open("rb") as f:
        if f.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
            raise errors.InvalidInput(f"{path} is not an SQLite database")
    try:
        with contextlib.closing(
            sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        ) as conn:
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise errors.InvalidInput(f"{path} is damaged: {check}")
            revision = _revision(conn, path)
            accounts = conn.execute("SELECT COUNT(*) FROM accounts").fetchone()[0]
            messages = conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise errors.InvalidInput(f"{path} cannot be read as a database: {exc}") from None
    return BackupInfo(path, path.stat().st_size, revision, int(accounts), int(messages))


def restore(backup_file: Path, target: Path) -> Path | None:
    """Put ``backup_file`` in place as ``target``; where the replaced database went, if any.

    The caller makes sure no server uses ``target`` (the data dir lock).
    """
    inspect(backup_file)
    target.parent.mkdir(parents=True, exist_ok=True)
    incoming = target.with_name(target.name + ".restoring")
    _remove(incoming)
    try:
        _copy(backup_file, incoming, None)
        _fsync(incoming)
    except BaseException:
        _remove(incoming)
        raise
    kept = None
    if target.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        kept = target.with_name(f"{target.name}.before-restore-{stamp}")
        _checkpoint(target)  # its WAL holds committed rows: fold them in before it moves
        target.replace(kept)
    for suffix in SIDECARS:
        _remove(target.with_name(target.name + suffix))
    incoming.replace(target)
    return kept


def _copy(source: Path, target: Path, progress: Progress | None) -> None:
    """SQLite's backup API in one step, watched from here for the progress shown."""
    total = source.stat().st_size + _size(source.with_name(source.name + "-wal"))
    done = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with (
                contextlib.closing(sqlite3.connect(source)) as src,
                contextlib.closing(sqlite3.connect(target)) as dst,
            ):
                src.backup(dst)  # pages=-1: everything in one read transaction
                dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        except BaseException as exc:
            failure.append(exc)
        finally:
            done.set()

    os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o600))  # private from the start
    worker = threading.Thread(target=run, name="sqlite-backup", daemon=True)
    worker.start()
    while not done.wait(0.5):
        if progress is not None:
            progress(_size(target), total)
    worker.join()
    if failure:
        raise failure[0]
    if progress is not None:
        progress(_size(target), _size(target))


def _revision(conn: sqlite3.Connection, path: Path) -> str:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        raise errors.InvalidInput(
            f"{path} is not an smsgate database (no schema revision)"
        ) from None
    revision = row[0] if row else None
    if revision not in known_revisions():
        raise errors.InvalidInput(
            f"{path} has schema revision {revision!r}, which this smsgate version does not "
            "know (a newer version's backup?)"
        )
    return str(revision)


def _checkpoint(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
