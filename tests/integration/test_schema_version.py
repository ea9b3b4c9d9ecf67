"""A node runs only on the schema of its own version, and with its Redis answering: a fresh
database is migrated, an older one waits for `smsgate migrate` (except SQLite's single
node, which upgrades it), a newer one is refused. `smsgate migrate` can run while nodes
run, twice at once included."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from smsgate import errors
from smsgate.database import Database
from smsgate.settings import Settings
from smsgate.store.db import HEAD_REVISION, create_engine, schema_revision

OLDER = f"{int(HEAD_REVISION) - 1:04d}"
NEWER = f"{int(HEAD_REVISION) + 1:04d}"


def _settings(database_url: str, tmp_path: Path) -> Settings:
    if database_url.startswith("sqlite:///"):
        return Settings(data_dir=Path(database_url.removeprefix("sqlite:///")).parent)
    return Settings(data_dir=tmp_path, database_url=database_url)


def _stamp(settings: Settings, revision: str) -> None:
    engine = create_engine(settings.sqlalchemy_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    engine.dispose()


def _cli(
    settings: Settings, *args: str, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SMSGATE_DATA_DIR": str(settings.data_dir), **(extra or {})}
    if settings.database_url:
        env["SMSGATE_DATABASE_URL"] = settings.database_url
    return subprocess.run(
        [sys.executable, "-m", "smsgate", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_fresh_database_is_migrated_on_open(database_url: str, tmp_path: Path) -> None:
    settings = _settings(database_url, tmp_path)
    Database.open(settings).close()
    engine = create_engine(settings.sqlalchemy_url)
    assert schema_revision(engine) == HEAD_REVISION
    engine.dispose()


def test_a_newer_schema_is_refused_with_what_to_do(database_url: str, tmp_path: Path) -> None:
    settings = _settings(database_url, tmp_path)
    Database.open(settings).close()
    _stamp(settings, NEWER)
    with pytest.raises(errors.SchemaMismatch, match=f"{NEWER}, newer .* upgrade smsgate"):
        Database.open(settings, upgrade=True)
    for command in (["worker"], ["serve", "--no-worker"], ["account", "list"]):
        result = _cli(settings, *command)
        assert result.returncode == 1, (command, result)
        assert f"revision {NEWER}, newer than this smsgate" in result.stderr
        assert "Traceback" not in result.stderr + result.stdout


def test_an_older_schema_waits_for_migrate_on_postgresql(database_url: str, tmp_path: Path) -> None:
    settings = _settings(database_url, tmp_path)
    Database.open(settings).close()
    _stamp(settings, OLDER)
    with pytest.raises(errors.SchemaMismatch, match="run `smsgate migrate` once"):
        Database.open(settings, upgrade=False)
    if settings.database_url is None:
        return  # SQLite: the one node upgrades on start (shown by the other tests' files)
    result = _cli(settings, "worker")
    assert result.returncode == 1
    assert f"revision {OLDER}, older than this smsgate ({HEAD_REVISION})" in result.stderr
    assert "smsgate migrate" in result.stderr
    assert "Traceback" not in result.stderr


def test_migrate_twice_at_once_on_a_fresh_database(database_url: str, tmp_path: Path) -> None:
    settings = _settings(database_url, tmp_path)
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: _cli(settings, "migrate"), range(2)))
    assert [r.returncode for r in results] == [0, 0], results
    assert all("database is up to date" in r.stdout for r in results)
    engine = create_engine(settings.sqlalchemy_url)
    assert schema_revision(engine) == HEAD_REVISION
    engine.dispose()


def test_a_node_refuses_to_start_when_its_redis_does_not_answer(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    dead = {"SMSGATE_REDIS_URL": "redis://:secret@127.0.0.1:1/0"}
    for command in (["worker"], ["serve", "--no-worker"]):
        result = _cli(settings, *command, extra=dead)
        assert result.returncode == 1, result
        assert "Redis at redis://127.0.0.1:1/0 does not answer" in result.stderr
        assert "secret" not in result.stderr
        assert "Traceback" not in result.stderr
