"""SQL for user replies (MO): intake, what operators and accounts read, re-push.

A matched reply's push row is written in the same transaction as the reply itself, so
nothing is attempted before it is safe on disk, and a crash can only delay a push.
The push queue itself (claims, attempts, the circuit) is ``store/push_queue.py``.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from smsgate.core.push_policy import CircuitState, is_paused
from smsgate.core.pushes import PushAttempt
from smsgate.core.replies import NewReply, ReplyFilter, ReplyRecord
from smsgate.core.states import PushState
from smsgate.store import tables as t
from smsgate.store.audit import audit, record_change
from smsgate.store.db import reading, writing
from smsgate.store.push_queue import circuits_paused_near

P = PushState


class SqlInboundStore:
    """The InboundStore port on SQLAlchemy Core (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- intake -----------------------------------------------------------------------

    def account_by_ext_code(self, ext: str) -> int | None:
        """The account whose extended code is ``ext`` or, failing that, its longest prefix
        (an application may append digits of its own after the account's code)."""
        a = t.accounts
        query = (
            sa.select(a.c.id)
            .where(a.c.ext_code.is_not(None), sa.literal(ext).startswith(a.c.ext_code))
            .order_by(sa.func.length(a.c.ext_code).desc())
            .limit(1)
        )
        with reading(self.engine) as conn:
            found = conn.execute(query).scalar_one_or_none()
        return None if found is None else int(found)

    def last_sender(self, phone: str, since: datetime) -> int | None:
        """The account that most recently sent to ``phone`` at or after ``since``."""
        m = t.messages
        query = (
            sa.select(m.c.account_id)
            .where(m.c.phone == phone, m.c.created_at >= since)
            .order_by(m.c.created_at.desc(), m.c.id.desc())
            .limit(1)
        )
        with reading(self.engine) as conn:
            found = conn.execute(query).scalar_one_or_none()
        return None if found is None else int(found)

    def add_reply(self, reply: NewReply) -> int:
        """The reply, its push row (if matched) and its opt-out, in one transaction."""
        with writing(self.engine) as conn:
            mo_id = conn.execute(
                t.mo.insert()
                .values(
                    account_id=reply.account_id,
                    phone=reply.phone,
                    dest=reply.dest,
                    content=reply.content,
                    carrier=reply.carrier,
                    matched_by=reply.matched_by,
                    optout=reply.optout,
                    received_at=reply.received_at,
                )
                .returning(t.mo.c.id)
            ).scalar_one()
            if reply.account_id is not None:
                conn.execute(
                    t.pushes.insert().values(
                        mo_id=mo_id,
                        account_id=reply.account_id,
                        state=P.PENDING.value,
                        next_at=reply.received_at,
                    )
                )
                if reply.optout:
                    _add_optout(conn, reply.account_id, reply.phone, reply.received_at)
                _owe_cmpp_customer(conn, reply.account_id, int(mo_id))
        return int(mo_id)

    # -- reading ----------------------------------------------------------------------

    def replies(self, f: ReplyFilter) -> list[ReplyRecord]:
        mo, p = t.mo, t.pushes
        query = _reply_select()
        if f.unmatched:
            query = query.where(mo.c.account_id.is_(None))
        if f.account_id is not None:
            query = query.where(mo.c.account_id == f.account_id)
        if f.phone is not None:
            query = query.where(mo.c.phone == f.phone)
        if f.state is not None:
            query = query.where(p.c.state == f.state.value)
        if f.since is not None:
            query = query.where(mo.c.received_at >= f.since)
        if f.until is not None:
            query = query.where(mo.c.received_at < f.until)
        if f.before_id is not None:
            query = query.where(mo.c.id < f.before_id)
        query = query.order_by(mo.c.id.desc()).limit(f.limit)
        with reading(self.engine) as conn:
            return [_reply(r) for r in conn.execute(query).mappings()]

    def reply(self, mo_id: int) -> ReplyRecord | None:
        with reading(self.engine) as conn:
            row = conn.execute(_reply_select().where(t.mo.c.id == mo_id)).mappings().first()
        return None if row is None else _reply(row)

    def attempts(self, mo_id: int) -> list[PushAttempt]:
        pa = t.push_attempts
        with reading(self.engine) as conn:
            rows = conn.execute(
                sa.select(pa).where(pa.c.mo_id == mo_id).order_by(pa.c.id)
            ).mappings()
            return [_attempt(r) for r in rows]

    def paused_accounts(self, now: datetime) -> list[tuple[str, datetime]]:
        """(username, paused until) of every account whose pushes are paused at ``now``;
        ``core.push_policy.is_paused`` decides, on the circuits the query bounds."""
        near = circuits_paused_near(now).subquery()
        a = t.accounts
        with reading(self.engine) as conn:
            rows = conn.execute(
                sa.select(a.c.username, near.c.paused_until, near.c.counted_since)
                .join(a, a.c.id == near.c.account_id)
                .order_by(a.c.username)
            ).all()
        return [
            (r.username, r.paused_until)
            for r in rows
            if is_paused(CircuitState(r.paused_until, r.counted_since), now)
        ]

    def circuit(self, account_id: int) -> CircuitState:
        with reading(self.engine) as conn:
            return _circuit(conn, account_id)

    # -- re-push and assignment -------------------------------------------------------

    def assign(self, mo_id: int, account_id: int, optout: bool, now: datetime, actor: str) -> bool:
        """Give an unmatched reply an owner and queue its push (once: False if the reply
        already has an account); with ``optout``, the number opts out of that account."""
        mo = t.mo
        with writing(self.engine) as conn:
            moved = conn.execute(
                mo.update()
                .where(mo.c.id == mo_id, mo.c.account_id.is_(None))
                .values(account_id=account_id, optout=optout)
            )
            if moved.rowcount != 1:
                return False
            phone = conn.execute(sa.select(mo.c.phone).where(mo.c.id == mo_id)).scalar_one()
            conn.execute(
                t.pushes.insert().values(
                    mo_id=mo_id, account_id=account_id, state=P.PENDING.value, next_at=now
                )
            )
            if optout:
                _add_optout(conn, account_id, phone, now)
            audit(conn, actor, "mo.assign", f"mo:{mo_id}", f"account {account_id}", now)
        return True

    def repush(self, mo_id: int, now: datetime) -> bool:
        """Start a new series for a finished push; False if it is still pending."""
        p = t.pushes
        with writing(self.engine) as conn:
            changed = conn.execute(
                p.update()
                .where(p.c.mo_id == mo_id, p.c.state != P.PENDING.value)
                .values(
                    state=P.PENDING.value,
                    series=p.c.series + 1,
                    attempts=0,
                    first_attempt_at=None,
                    next_at=now,
                    claimed_by=None,
                    claimed_at=None,
                    last_error=None,
                    done_at=None,
                )
            )
        return changed.rowcount == 1


def _add_optout(conn: sa.Connection, account_id: int, phone: str, now: datetime) -> None:
    o = t.optouts
    exists = conn.execute(
        sa.select(o.c.phone).where(o.c.account_id == account_id, o.c.phone == phone)
    ).first()
    if exists is None:
        conn.execute(o.insert().values(account_id=account_id, phone=phone, created_at=now))
        # Servers reload their snapshot, so the next send to this number gets 57.
        record_change(conn, "optout.reply", str(account_id), phone, now, actor="reply")


def _circuit(conn: sa.Connection, account_id: int) -> CircuitState:
    c = t.push_circuit
    row = conn.execute(
        sa.select(c.c.paused_until, c.c.counted_since).where(c.c.account_id == account_id)
    ).first()
    return CircuitState() if row is None else CircuitState(row.paused_until, row.counted_since)


def _reply_select() -> sa.Select[tuple[object, ...]]:
    mo, p, a = t.mo, t.pushes, t.accounts
    return (
        sa.select(
            mo,
            a.c.username,
            p.c.state,
            p.c.attempts,
            p.c.series,
            p.c.next_at,
            p.c.last_error,
            p.c.done_at,
        )
        .outerjoin(a, a.c.id == mo.c.account_id)
        .outerjoin(p, p.c.mo_id == mo.c.id)
    )


def _reply(r: sa.RowMapping) -> ReplyRecord:
    state = None if r["state"] is None else PushState(r["state"])
    return ReplyRecord(
        id=int(r["id"]),
        account=r["username"],
        phone=r["phone"],
        dest=r["dest"],
        content=r["content"],
        carrier=r["carrier"],
        matched_by=r["matched_by"],
        optout=bool(r["optout"]),
        received_at=r["received_at"],
        push_state=state,
        attempts=int(r["attempts"] or 0),
        series=int(r["series"] or 0),
        next_at=r["next_at"] if state is P.PENDING else None,
        last_error=r["last_error"],
        done_at=r["done_at"],
    )


def _attempt(r: sa.RowMapping) -> PushAttempt:
    return PushAttempt(**{name: r[name] for name in PushAttempt.__dataclass_fields__})


def _owe_cmpp_customer(conn: sa.Connection, account_id: int, mo_id: int) -> None:
    """A reply for an account with a CMPP login also goes to its CMPP connection."""
    a = t.accounts
    owner = sa.select(a.c.id, sa.literal(mo_id)).where(
        a.c.id == account_id, a.c.cmpp_sp_id.is_not(None)
    )
    conn.execute(t.cmpp_replies.insert().from_select(["account_id", "mo_id"], owner))
