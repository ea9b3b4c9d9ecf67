"""`smsgate backup FILE` and `smsgate restore FILE` (SQLite; PostgreSQL: pg_dump)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from smsgate import errors
from smsgate.cli import datalock
from smsgate.cli.context import DataDir, build_settings
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
