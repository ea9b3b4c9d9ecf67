"""The audit trail and the configuration revision.

Every admin change writes an audit row and bumps ``config_rev`` in the transaction that
makes it; running servers poll that counter to refresh their in-memory snapshot.
A ledger posting is audited too, but does not bump it: balances are not in the snapshot.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from smsgate.core import actors
from smsgate.store import tables as t

SYSTEM_ACTOR = actors.SYSTEM


def config_rev(conn: sa.Connection) -> int:
    """The configuration's revision: every admin change moves it."""
    return int(conn.execute(sa.select(t.config_rev.c.rev)).scalar_one())


def record_change(
    conn: sa.Connection,
    action: str,
    subject: str,
    detail: str | None,
    now: datetime,
    actor: str | None = None,
) -> None:
    """Audit the change (under ``actor``, else whoever acts now: core/actors.py) and tell
    running servers to reload their snapshot."""
    audit(conn, actor or actors.current(), action, subject, detail, now)
    conn.execute(t.config_rev.update().values(rev=t.config_rev.c.rev + 1))


def audit(
    conn: sa.Connection, actor: str, action: str, subject: str, detail: str | None, now: datetime
) -> None:
    """One audit row, in the caller's transaction."""
    conn.execute(
        t.audit.insert().values(actor=actor, action=action, subject=subject, detail=detail, at=now)
    )
