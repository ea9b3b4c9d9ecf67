"""Counts for `/metrics` and the database check of `/readyz`: read-only, index-backed."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from smsgate.core.observed import QueueCounts
from smsgate.store import tables as t

RECENT = timedelta(days=1)  # messages by state: those created within this (index on created_at)


class SqlStats:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def ping(self) -> None:
        """Raise if the database cannot answer a query."""
        with self._engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def counts(self, now: datetime) -> QueueCounts:
        m, o, p, c = t.messages, t.outbox, t.pushes, t.push_circuit
        with self._engine.connect() as conn:
            depth = conn.scalar(sa.select(sa.func.count()).select_from(o)) or 0
            by_state = conn.execute(
                sa.select(m.c.state, sa.func.count())
                .where(m.c.created_at >= now - RECENT)
                .group_by(m.c.state)
            ).all()
            pending = conn.scalar(
                sa.select(sa.func.count()).select_from(p).where(p.c.state == "pending")
            )
            paused = conn.scalar(
                sa.select(sa.func.count()).select_from(c).where(c.c.paused_until > now)
            )
        return QueueCounts(
            queue_depth=int(depth),
            messages_by_state={str(state): int(n) for state, n in by_state},
            pushes_pending=int(pending or 0),
            paused_accounts=int(paused or 0),
        )
