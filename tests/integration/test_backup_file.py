"""The checks a backup file passes before `smsgate restore` uses it (SQLite files)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from smsgate import errors
from smsgate.settings import Settings
from smsgate.store import backup
from smsgate.store.db import HEAD_REVISION, create_engine, migrate


@pytest.fixture
def database(tmp_path: Path) -> Path:
    settings = Settings(data_dir=tmp_path / "data")
    settings.data_dir.mkdir()
    engine = create_engine(settings.sqlalchemy_url)
    migrate(engine)
    engine.dispose()
    return settings.data_dir / "smsgate.db"


def test_a_backup_is_a_private_self_contained_copy_of_a_known_revision(
    database: Path, tmp_path: Path
) -> None:
    info = backup.backup(database, tmp_path / "copy.db")
    assert info.revision == HEAD_REVISION
    assert (tmp_path / "copy.db").stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "copy.db.partial").exists()
    with sqlite3.connect(tmp_path / "copy.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_a_newer_schema_revision_is_refused(database: Path, tmp_path: Path) -> None:
    copy = backup.backup(database, tmp_path / "copy.db").path
    with sqlite3.connect(copy) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(errors.InvalidInput, match="schema revision '9999'"):
        backup.inspect(copy)


def test_a_damaged_file_is_refused(database: Path, tmp_path: Path) -> None:
    copy = backup.backup(database, tmp_path / "copy.db").path
    data = bytearray(copy.read_bytes())
    data[4096:8192] = b"\xff" * 4096  # the second page overwritten
    copy.write_bytes(bytes(data))
    with pytest.raises(errors.InvalidInput):
        backup.inspect(copy)


def test_restore_keeps_the_database_it_replaces(database: Path, tmp_path: Path) -> None:
    copy = backup.backup(database, tmp_path / "copy.db").path
    kept = backup.restore(copy, database)
    assert kept is not None
    assert kept.exists()
    assert backup.inspect(database).revision == HEAD_REVISION
