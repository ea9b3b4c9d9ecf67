"""SQL behind the web console: operators, ApiKeys, the ledger and audit trail as read,
and the per-day message counts of the dashboard.

Writes follow the other stores: one transaction with its audit row (and a bump of
``config_rev`` where running servers must notice, as for a revoked ApiKey).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from smsgate import errors
from smsgate.core import actors
from smsgate.core.reports import ApiKeyInfo, AuditEntry, DailyCount, LedgerEntry, Operator
from smsgate.store import tables as t
from smsgate.store.accounts import account_id_of
from smsgate.store.audit import audit, record_change
from smsgate.store.db import reading, writing


class SqlConsoleStore:
    """The ConsoleStore port on SQLAlchemy Core (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- operators ------------------------------------------------------------------

    def create_operator(self, username: str, password_hash: str, now: datetime) -> None:
        with writing(self.engine) as conn:
            exists = conn.execute(
                sa.select(t.operators.c.id).where(t.operators.c.username == username)
            ).first()
            if exists:
                raise errors.Conflict(f"operator {username!r} already exists")
            conn.execute(
                t.operators.insert().values(
                    username=username, password_hash=password_hash, created_at=now
                )
            )
            audit(conn, actors.current(), "operator.create", username, None, now)

    def operator(self, username: str) -> Operator | None:
        with reading(self.engine) as conn:
            row = (
                conn.execute(sa.select(t.operators).where(t.operators.c.username == username))
                .mappings()
                .first()
            )
        if row is None:
            return None
        return Operator(row["id"], row["username"], row["password_hash"], row["created_at"])

    # -- ApiKeys --------------------------------------------------------------------

    def api_keys(self, username: str) -> list[ApiKeyInfo]:
        with reading(self.engine) as conn:
            account_id = account_id_of(conn, username)
            rows = conn.execute(
                sa.select(t.api_keys)
                .where(t.api_keys.c.account_id == account_id)
                .order_by(t.api_keys.c.id.desc())
            ).mappings()
            return [ApiKeyInfo(r["id"], r["hint"], r["created_at"], r["revoked_at"]) for r in rows]

    def revoke_api_key(self, username: str, key_id: int, now: datetime) -> bool:
        """False when the account has no such key, or it was revoked already."""
        with writing(self.engine) as conn:
            account_id = account_id_of(conn, username)
            done = conn.execute(
                t.api_keys.update()
                .where(
                    t.api_keys.c.id == key_id,
                    t.api_keys.c.account_id == account_id,
                    t.api_keys.c.revoked_at.is_(None),
                )
                .values(revoked_at=now)
                .returning(t.api_keys.c.hint)
            ).first()
            if done is None:
                return False
            record_change(conn, "apikey.revoke", username, done.hint, now)
        return True

    # -- what happened --------------------------------------------------------------

    def ledger(self, username: str, limit: int) -> list[LedgerEntry]:
        with reading(self.engine) as conn:
            account_id = account_id_of(conn, username)
            rows = conn.execute(
                sa.select(t.ledger)
                .where(t.ledger.c.account_id == account_id)
                .order_by(t.ledger.c.id.desc())
                .limit(limit)
            ).mappings()
            return [LedgerEntry(r["id"], r["delta"], r["kind"], r["ref"], r["at"]) for r in rows]

    def audit_log(self, limit: int, before_id: int | None = None) -> list[AuditEntry]:
        query = sa.select(t.audit).order_by(t.audit.c.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(t.audit.c.id < before_id)
        with reading(self.engine) as conn:
            rows = conn.execute(query).mappings().all()
        return [
            AuditEntry(r["id"], r["actor"], r["action"], r["subject"], r["detail"], r["at"])
            for r in rows
        ]

    def daily_counts(self, account_id: int | None, since: datetime) -> list[DailyCount]:
        """Messages per UTC day and state, created at or after ``since``."""
        m = t.messages
        day = _utc_day(self.engine, m.c.created_at)
        query = (
            sa.select(day.label("day"), m.c.state, sa.func.count().label("n"))
            .where(m.c.created_at >= since)
            .group_by(day, m.c.state)
        )
        if account_id is not None:
            query = query.where(m.c.account_id == account_id)
        with reading(self.engine) as conn:
            rows = conn.execute(query).all()
        return [DailyCount(_as_date(r.day), r.state, int(r.n)) for r in rows]


def _utc_day(engine: sa.Engine, column: Any) -> Any:
    # SQLite keeps UTC text; PostgreSQL converts to the session's zone unless told.
    if engine.dialect.name == "sqlite":
        return sa.func.date(column)
    return sa.func.date(sa.func.timezone("UTC", column))


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))
