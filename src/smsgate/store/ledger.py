"""SQL for money: append-only ledger rows and the running balance they move.

``post`` (and its two halves, for the send path's batched writes) runs in the caller's
transaction, so a charge is written together with the messages it pays for.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from smsgate import errors
from smsgate.core import actors
from smsgate.core.accounts import LedgerKind, sent_delta
from smsgate.store import tables as t
from smsgate.store.accounts import account_id_of
from smsgate.store.audit import audit
from smsgate.store.db import reading, writing


class SqlLedger:
    """The Ledger port on SQLAlchemy Core (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def post_ledger(
        self, username: str, delta: int, kind: LedgerKind, ref: str | None, now: datetime
    ) -> int:
        """Append one ledger row and move the running balance; returns the new balance."""
        with writing(self.engine) as conn:
            account_id = account_id_of(conn, username)
            if not post(conn, account_id, delta, kind, ref, now):
                raise errors.InvalidInput(
                    f"{username!r} has too little balance for {delta}; the balance never goes "
                    "below zero"
                )
            audit(conn, actors.current(), f"ledger.{kind.value}", username, f"{delta:+d}", now)
            return int(
                conn.execute(
                    sa.select(t.accounts.c.balance).where(t.accounts.c.id == account_id)
                ).scalar_one()
            )

    def ledger_sum(self, username: str) -> int:
        with reading(self.engine) as conn:
            account_id = account_id_of(conn, username)
            total = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(t.ledger.c.delta), 0)).where(
                    t.ledger.c.account_id == account_id
                )
            ).scalar_one()
        return int(total)

    def balance(self, account_id: int) -> tuple[int, int]:
        """(sent, remaining) for the /query answer."""
        with reading(self.engine) as conn:
            row = conn.execute(
                sa.select(t.accounts.c.sent, t.accounts.c.balance).where(
                    t.accounts.c.id == account_id
                )
            ).one()
        return int(row.sent), int(row.balance)


def post(
    conn: sa.Connection,
    account_id: int,
    delta: int,
    kind: LedgerKind,
    ref: str | None,
    now: datetime,
) -> bool:
    """Append a ledger row and move balance/sent with it, in the caller's transaction.

    Returns False, changing nothing, when a debit would take the balance below zero.
    """
    if not move_balance(conn, account_id, delta, kind):
        return False
    append_ledger(conn, account_id, delta, kind, ref, now)
    return True


def move_balance(conn: sa.Connection, account_id: int, delta: int, kind: LedgerKind) -> bool:
    """The running balance half of a ledger posting; the caller must append the row.

    The update is conditional, so a debit that would go below zero changes nothing
    and returns False; the CHECK constraint is the last line of defence.
    """
    moved = conn.execute(
        t.accounts.update()
        .where(t.accounts.c.id == account_id, t.accounts.c.balance + delta >= 0)
        .values(
            balance=t.accounts.c.balance + delta,
            sent=t.accounts.c.sent + sent_delta(kind, delta),
        )
    )
    return moved.rowcount == 1


def append_ledger(
    conn: sa.Connection,
    account_id: int,
    delta: int,
    kind: LedgerKind,
    ref: str | None,
    now: datetime,
) -> None:
    """The ledger row half of a posting; the caller must move the balance."""
    conn.execute(
        t.ledger.insert().values(
            account_id=account_id, delta=delta, kind=kind.value, ref=ref, at=now
        )
    )
