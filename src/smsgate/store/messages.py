"""SQL for the send path: charging and enqueueing, claiming, states and refunds."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from smsgate.core.accounts import LedgerKind
from smsgate.core.messages import (
    Charge,
    DeliveryReport,
    Kind,
    Message,
    MessageFilter,
    Outgoing,
    SubmitResult,
)
from smsgate.core.states import MessageState
from smsgate.store import tables as t
from smsgate.store.db import reading
from smsgate.store.ledger import append_ledger, move_balance, post

log = logging.getLogger(__name__)

S = MessageState


@dataclass(frozen=True, slots=True)
class Claimed:
    message: Outgoing
    carrier: str
    account_id: int
    created_at: datetime


class SqlMessageStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._postgres = engine.dialect.name == "postgresql"

    # -- accept: one transaction for many requests (the group commit) ------------------

    def write_charges(self, charges: Sequence[Charge]) -> list[int | Exception | None]:
        """Debit, batch, messages and outbox rows for each charge, all in one transaction.

        Returns per charge the batch id, None where that account's balance was too low
        (its debit is conditional, so it fails alone), or the exception that kept it
        from being written. If the group transaction fails, each charge is retried in a
        transaction of its own, so one bad request cannot fail its neighbours, and a
        neighbour that did commit is reported as committed.
        """
        try:
            with self.engine.begin() as conn:
                return [self._write_one(conn, c) for c in charges]
        except sa.exc.DBAPIError as exc:
            if len(charges) == 1:
                return [_detached(exc)]
            log.exception("group commit of %d requests failed; retrying one by one", len(charges))
        return [self._write_alone(charge) for charge in charges]

    def _write_alone(self, charge: Charge) -> int | Exception | None:
        try:
            with self.engine.begin() as conn:
                return self._write_one(conn, charge)
        except sa.exc.DBAPIError as exc:
            log.exception("send request of account %d could not be written", charge.account_id)
            return _detached(exc)

    def _write_one(self, conn: sa.Connection, charge: Charge) -> int | None:
        if not move_balance(conn, charge.account_id, -charge.cost, LedgerKind.CHARGE):
            return None
        batch_id = conn.execute(
            t.batches.insert()
            .values(
                account_id=charge.account_id,
                product_id=charge.product_id,
                kind=charge.kind.value,
                numbers=len(charge.phones),
                units=charge.units,
                cost=charge.cost,
                client_ip=charge.client_ip[:64],
                created_at=charge.at,
            )
            .returning(t.batches.c.id)
        ).scalar_one()
        conn.execute(
            t.messages.insert(),
            [
                {
                    "batch_id": batch_id,
                    "account_id": charge.account_id,
                    "product_id": charge.product_id,
                    "kind": charge.kind.value,
                    "phone": phone,
                    "content": charge.content,
                    "units": charge.units,
                    "cost": charge.cost_per_message,
                    "state": S.ACCEPTED.value,
                    "carrier": charge.carrier,
                    "created_at": charge.at,
                }
                for phone in charge.phones
            ],
        )
        conn.execute(
            t.outbox.insert().from_select(
                ["message_id", "available_at"],
                sa.select(t.messages.c.id, sa.literal(charge.at, t.UTCDateTime())).where(
                    t.messages.c.batch_id == batch_id
                ),
            )
        )
        append_ledger(
            conn, charge.account_id, -charge.cost, LedgerKind.CHARGE, f"batch:{batch_id}", charge.at
        )
        return int(batch_id)

    # -- dispatch: claim, submit results, expiry, crash recovery --------------------------

    def claim(self, node: str, limit: int, now: datetime) -> list[Claimed]:
        """Take up to ``limit`` due outbox rows for this node.

        PostgreSQL: concurrent dispatchers skip each other's rows (FOR UPDATE SKIP LOCKED).
        SQLite: one writer at a time, so the claim is serialised by BEGIN IMMEDIATE.
        """
        due = (
            sa.select(t.outbox.c.message_id)
            .where(t.outbox.c.claimed_by.is_(None), t.outbox.c.available_at <= now)
            .order_by(t.outbox.c.message_id)
            .limit(limit)
        )
        if self._postgres:
            due = due.with_for_update(skip_locked=True)
        with self.engine.begin() as conn:
            ids = list(conn.execute(due).scalars())
            if not ids:
                return []
            conn.execute(
                t.outbox.update()
                .where(t.outbox.c.message_id.in_(ids))
                .values(claimed_by=node, claimed_at=now, attempts=t.outbox.c.attempts + 1)
            )
            rows = conn.execute(
                sa.select(t.messages).where(t.messages.c.id.in_(ids)).order_by(t.messages.c.id)
            ).mappings()
            return [
                Claimed(
                    Outgoing(r["id"], r["phone"], r["content"], Kind(r["kind"]), r["units"]),
                    r["carrier"],
                    r["account_id"],
                    r["created_at"],
                )
                for r in rows
            ]

    def record_submits(self, results: Sequence[SubmitResult], now: datetime) -> None:
        """Store what the carrier answered: submitted, failed (refunded) or try later."""
        with self.engine.begin() as conn:
            for result in results:
                if result.accepted:
                    self._submitted(conn, result, now)
                elif result.retry_after is not None:
                    conn.execute(
                        t.outbox.update()
                        .where(t.outbox.c.message_id == result.message_id)
                        .values(
                            claimed_by=None,
                            claimed_at=None,
                            available_at=now + timedelta(seconds=result.retry_after),
                        )
                    )
                else:
                    self._fail_unsent(conn, result.message_id, S.FAILED, result.error, now)

    def _submitted(self, conn: sa.Connection, result: SubmitResult, now: datetime) -> None:
        m = t.messages
        moved = conn.execute(
            m.update()
            .where(m.c.id == result.message_id, m.c.state == S.ACCEPTED.value)
            .values(state=S.SUBMITTED.value, carrier_ref=result.carrier_ref, submitted_at=now)
        )
        if moved.rowcount == 0:
            # Reaped as `unknown` while this (slow) submit was out: keep it unknown, but
            # keep the carrier's reference so that its delivery report can settle it.
            conn.execute(
                m.update()
                .where(
                    m.c.id == result.message_id,
                    m.c.state == S.UNKNOWN.value,
                    m.c.carrier_ref.is_(None),
                )
                .values(carrier_ref=result.carrier_ref, submitted_at=now)
            )
        conn.execute(t.outbox.delete().where(t.outbox.c.message_id == result.message_id))

    def _fail_unsent(
        self,
        conn: sa.Connection,
        message_id: int,
        state: MessageState,
        error: str | None,
        now: datetime,
    ) -> None:
        """A message that never reached a carrier: final state, refund, out of the queue."""
        changed = conn.execute(
            t.messages.update()
            .where(t.messages.c.id == message_id, t.messages.c.state == S.ACCEPTED.value)
            .values(state=state.value, error=(error or state.value)[:200], done_at=now)
            .returning(t.messages.c.account_id, t.messages.c.cost)
        ).first()
        conn.execute(t.outbox.delete().where(t.outbox.c.message_id == message_id))
        if changed is not None and changed.cost > 0:
            post(
                conn,
                changed.account_id,
                changed.cost,
                LedgerKind.REFUND,
                f"message:{message_id}",
                now,
            )

    def expire(self, before: datetime, now: datetime, limit: int = 500) -> int:
        """Accepted messages still unsent when their validity ended: expired and refunded."""
        with self.engine.begin() as conn:
            ids = list(
                conn.execute(
                    sa.select(t.outbox.c.message_id)
                    .join(t.messages, t.messages.c.id == t.outbox.c.message_id)
                    .where(t.outbox.c.claimed_by.is_(None), t.messages.c.created_at < before)
                    .limit(limit)
                ).scalars()
            )
            for message_id in ids:
                self._fail_unsent(conn, message_id, S.EXPIRED, "not submitted within validity", now)
        return len(ids)

    def mark_in_flight_unknown(
        self, claimed_before: datetime, now: datetime, exclude_node: str | None = None
    ) -> int:
        """Claims left by a process that died mid-submit become `unknown`, never re-sent.

        The carrier may or may not have taken such a message; sending it again could
        deliver it twice, so it is left for a delivery report or an operator to settle.
        """
        stale = t.outbox.c.claimed_by.is_not(None) & (t.outbox.c.claimed_at < claimed_before)
        if exclude_node is not None:
            stale = t.outbox.c.claimed_by.is_not(None) & (t.outbox.c.claimed_by != exclude_node)
        with self.engine.begin() as conn:
            ids = list(conn.execute(sa.select(t.outbox.c.message_id).where(stale)).scalars())
            if not ids:
                return 0
            conn.execute(
                t.messages.update()
                .where(t.messages.c.id.in_(ids), t.messages.c.state == S.ACCEPTED.value)
                .values(state=S.UNKNOWN.value, error="in flight when the dispatcher stopped")
            )
            conn.execute(t.outbox.delete().where(t.outbox.c.message_id.in_(ids)))
        log.warning("%d message(s) were in flight at a crash and are now `unknown`", len(ids))
        return len(ids)

    def apply_report(self, report: DeliveryReport) -> bool:
        return self.apply_reports([report])[0]

    def apply_reports(self, reports: Sequence[DeliveryReport]) -> list[bool]:
        """Delivery reports settle submitted (or unknown) messages, many per transaction.

        True per report that settled a message; a duplicate or an unknown reference is False.
        """
        m = t.messages
        with self.engine.begin() as conn:
            return [
                conn.execute(
                    m.update()
                    .where(
                        m.c.carrier == r.carrier,
                        m.c.carrier_ref == r.carrier_ref,
                        m.c.state.in_([S.SUBMITTED.value, S.UNKNOWN.value]),
                    )
                    .values(state=r.state.value, error=r.error, done_at=r.at)
                ).rowcount
                > 0
                for r in reports
            ]

    # -- reading ----------------------------------------------------------------------

    def messages(self, f: MessageFilter) -> list[Message]:
        m = t.messages
        query = _message_select()
        if f.account_id is not None:
            query = query.where(m.c.account_id == f.account_id)
        if f.phone is not None:
            query = query.where(m.c.phone == f.phone)
        if f.state is not None:
            query = query.where(m.c.state == f.state.value)
        if f.batch_id is not None:
            query = query.where(m.c.batch_id == f.batch_id)
        if f.since is not None:
            query = query.where(m.c.created_at >= f.since)
        if f.until is not None:
            query = query.where(m.c.created_at < f.until)
        if f.before_id is not None:
            query = query.where(m.c.id < f.before_id)
        query = query.order_by(m.c.id.desc()).limit(f.limit)
        with reading(self.engine) as conn:
            return [_message(r) for r in conn.execute(query).mappings()]

    def message(self, message_id: int) -> Message | None:
        with reading(self.engine) as conn:
            row = (
                conn.execute(_message_select().where(t.messages.c.id == message_id))
                .mappings()
                .first()
            )
        return _message(row) if row else None

    def recent_sends(self, since: datetime) -> list[tuple[int, str, str, datetime]]:
        """(account id, phone, content, at) of messages accepted since then, to rebuild
        the frequency counters after a restart."""
        m = t.messages
        with reading(self.engine) as conn:
            rows = conn.execute(
                sa.select(m.c.account_id, m.c.phone, m.c.content, m.c.created_at)
                .where(m.c.created_at >= since)
                .order_by(m.c.id)
            ).all()
        return [(int(r[0]), r[1], r[2], r[3]) for r in rows]


def _detached(exc: Exception) -> Exception:
    """The error without its traceback: it is handed to another task, and its frames
    would keep the failed transaction's connection alive."""
    return exc.with_traceback(None)


def _message_select() -> sa.Select[tuple[object, ...]]:
    return sa.select(t.messages, t.accounts.c.username).join(
        t.accounts, t.accounts.c.id == t.messages.c.account_id
    )


def _message(r: sa.RowMapping) -> Message:
    return Message(
        id=r["id"],
        batch_id=r["batch_id"],
        account=r["username"],
        product_id=r["product_id"],
        kind=Kind(r["kind"]),
        phone=r["phone"],
        content=r["content"],
        units=r["units"],
        cost=r["cost"],
        state=MessageState(r["state"]),
        carrier=r["carrier"],
        carrier_ref=r["carrier_ref"],
        error=r["error"],
        created_at=r["created_at"],
        submitted_at=r["submitted_at"],
        done_at=r["done_at"],
    )
