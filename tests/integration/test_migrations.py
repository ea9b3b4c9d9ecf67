"""The schema built by migrations is exactly the schema declared in store/tables.py."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from smsgate.store.db import migrate, pending_migrations
from smsgate.store.tables import metadata


def test_migrations_match_the_declared_schema(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_migrate_is_idempotent(engine: sa.Engine) -> None:
    assert not pending_migrations(engine)
    migrate(engine)
    assert not pending_migrations(engine)


def test_head_revision_constant_is_alembics_head() -> None:
    from alembic.script import ScriptDirectory

    from smsgate.store.db import HEAD_REVISION, alembic_config

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head == HEAD_REVISION
