"""Copy a whole smsgate database into another, empty one: how an installation moves from
SQLite to PostgreSQL (`smsgate copy-database --to URL`).

The source is read in one read transaction, so the copy is the database as of one instant;
the target is written in one transaction, so an interrupted copy leaves it empty. Tables
go parents first (the declared foreign keys give the order), rows in primary-key order and
in chunks; PostgreSQL's id sequences are then moved past the copied ids, so new rows get
new ids. Both schemas must be this version's: the source at the newest revision, the
target fresh (it is migrated first) or migrated with no accounts and no messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from smsgate import errors
from smsgate.store.db import HEAD_REVISION, migrate, reading, schema_revision
from smsgate.store.tables import accounts, messages, metadata

CHUNK = 2000  # rows per INSERT: bounded memory, few round trips
Progress = Callable[[str, int], None]  # table, rows copied so far


@dataclass(frozen=True, slots=True)
class Copied:
    rows: dict[str, int]  # table -> rows copied

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def copy_database(source: sa.Engine, target: sa.Engine, progress: Progress | None = None) -> Copied:
    """Every row of ``source`` into ``target``; the rows copied per table."""
    _check_source(source)
    _prepare_target(target)
    rows: dict[str, int] = {}
    with reading(source) as src, target.begin() as dst:
        for table in reversed(metadata.sorted_tables):  # what migrations seeded goes first
            dst.execute(table.delete())
        for table in metadata.sorted_tables:
            rows[table.name] = _copy_table(src, dst, table, progress)
        if dst.dialect.name == "postgresql":
            _move_sequences(dst)
        for table in metadata.sorted_tables:  # the same count on both sides, or nothing
            copied = dst.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            if copied != rows[table.name]:
                raise errors.InvalidInput(
                    f"{table.name}: {copied} row(s) in the target after copying "
                    f"{rows[table.name]}; nothing was kept"
                )
    return Copied(rows)


def _check_source(source: sa.Engine) -> None:
    revision = schema_revision(source)
    if revision != HEAD_REVISION:
        raise errors.SchemaMismatch(
            f"the source database is at schema {revision or 'none'}, not {HEAD_REVISION}: "
            "run `smsgate migrate` on it first (with this version)"
        )


def _prepare_target(target: sa.Engine) -> None:
    revision = schema_revision(target)
    if revision is None:
        migrate(target)
    elif revision != HEAD_REVISION:
        raise errors.SchemaMismatch(
            f"the target database is at schema {revision}, not {HEAD_REVISION}: give an "
            "empty database"
        )
    with reading(target) as conn:
        for table in (accounts, messages):
            if conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one():
                raise errors.InvalidInput(
                    f"the target database already holds {table.name}: give an empty database "
                    "(nothing was copied)"
                )


def _copy_table(
    src: sa.Connection, dst: sa.Connection, table: sa.Table, progress: Progress | None
) -> int:
    done = 0
    result = src.execution_options(yield_per=CHUNK).execute(
        sa.select(table).order_by(*table.primary_key.columns)
    )
    for chunk in result.mappings().partitions(CHUNK):
        dst.execute(table.insert(), [dict(row) for row in chunk])
        done += len(chunk)
        if progress is not None:
            progress(table.name, done)
    return done


def _move_sequences(dst: sa.Connection) -> None:
    """Each id sequence to the largest copied id (the next insert takes the one after)."""
    for table in metadata.sorted_tables:
        for column in table.primary_key.columns:
            if column.autoincrement is not True:
                continue
            dst.execute(
                sa.text(
                    "SELECT setval(pg_get_serial_sequence(:t, :c), "
                    f'COALESCE((SELECT max("{column.name}") FROM "{table.name}"), 0) + 1, false)'
                ),
                {"t": table.name, "c": column.name},
            )
