"""`smsgate backup FILE` and `smsgate restore FILE` (SQLite; PostgreSQL: pg_dump), and
`smsgate copy-database --to URL` (moving to PostgreSQL)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from smsgate import errors
from smsgate.cli import datalock
from smsgate.cli.context import DataDir, build_settings, describe_database
from smsgate.cli.output import err, out
from smsgate.settings import Settings

SHOW_PROGRESS_FROM = 64 * 1024 * 1024  # bytes: smaller databases are copied in a blink
POSTGRES_HINT = (
    "on PostgreSQL use pg_dump and pg_restore (docs/operations.md: Backups); "
    "`smsgate backup` and `smsgate restore` handle the SQLite database of a data dir"
)


def register(app: typer.Typer) -> None:
    app.command(help="Back up the SQLite database to FILE, consistently, while it serves.")(backup)
    app.command(help="Restore the SQLite database from a backup FILE (no server running).")(restore)
    app.command(
        "copy-database",
        help="Copy the whole database into another, empty one (SQLite to PostgreSQL).",
    )(copy_database)


def copy_database(
    to: Annotated[
        str, typer.Option("--to", help="The empty target, e.g. postgresql://user@host/smsgate.")
    ],
    data_dir: DataDir = None,
) -> None:
    """Stop the servers first: what they write after the copy began is not copied."""
    from smsgate.store.db import create_engine
    from smsgate.store.transfer import copy_database as copy

    settings = build_settings(data_dir)
    if settings.database_url is None and not (settings.data_dir / "smsgate.db").exists():
        raise errors.InvalidInput(f"no database at {settings.data_dir / 'smsgate.db'}")
    target_settings = Settings(data_dir=settings.data_dir, database_url=to)
    if target_settings.sqlalchemy_url == settings.sqlalchemy_url:
        raise errors.InvalidInput("--to names the database being copied")
    source, target = (
        create_engine(settings.sqlalchemy_url),
        create_engine(target_settings.sqlalchemy_url),
    )
    started = time.monotonic()
    try:
        copied = copy(source, target)
    finally:
        source.dispose()
        target.dispose()
    out.print(
        f"copied {copied.total} row(s) in {len(copied.rows)} tables into "
        f"{describe_database(target_settings)} in {time.monotonic() - started:.1f} s: "
        f"{copied.rows.get('accounts', 0)} account(s), {copied.rows.get('messages', 0)} "
        "message(s)",
        markup=False,
    )
    out.print("next: set SMSGATE_DATABASE_URL to it on every node and start them", markup=False)


def backup(
    file: Annotated[Path, typer.Argument(help="Where to write the backup.")],
    data_dir: DataDir = None,
) -> None:
    from smsgate.store import backup as store_backup

    settings = build_settings(data_dir)
    source = _sqlite_file(settings)
    if file.resolve() == source.resolve():
        raise errors.InvalidInput("the backup FILE cannot be the database itself")
    started = time.monotonic()
    info = store_backup.backup(source, file, _progress("backing up"))
    out.print(
        f"backed up {source} to {info.path}: {_size(info.size)}, schema {info.revision}, "
        f"{info.accounts} account(s), {info.messages} message(s), "
        f"{time.monotonic() - started:.1f} s",
        markup=False,
    )


def restore(
    file: Annotated[Path, typer.Argument(help="A backup made by `smsgate backup`.")],
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace the data dir's existing database (kept beside)."),
    ] = False,
    data_dir: DataDir = None,
) -> None:
    from smsgate.store import backup as store_backup

    settings = build_settings(data_dir)
    target = _sqlite_file(settings)
    info = store_backup.inspect(file)  # refuse a bad file before anything else
    with datalock.exclusive(settings.data_dir):
        if target.exists() and not force:
            raise errors.InvalidInput(
                f"{target} already holds a database: pass --force to replace it "
                "(it is kept beside, renamed)"
            )
        kept = store_backup.restore(file, target)
    out.print(
        f"restored {file} into {target}: schema {info.revision}, {info.accounts} account(s), "
        f"{info.messages} message(s)",
        markup=False,
    )
    if kept is not None:
        out.print(f"the database it replaced is kept as {kept}", markup=False)


def _sqlite_file(settings: Settings) -> Path:
    if settings.database_url is not None and not settings.database_url.startswith("sqlite"):
        raise errors.InvalidInput(POSTGRES_HINT)
    return settings.data_dir / "smsgate.db"


def _progress(verb: str):  # type: ignore[no-untyped-def]
    def show(done: int, total: int) -> None:
        if total >= SHOW_PROGRESS_FROM:
            percent = min(100, 100 * done // max(total, 1))
            err.print(f"{verb}: {percent}% ({_size(done)} of {_size(total)})", markup=False)

    return show


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"
