"""SQL for the send path: charging and enqueueing, claiming, states and refunds."""

from __future__ import annotations

import functools
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from smsgate.core.accounts import LedgerKind, sent_delta
from smsgate.core.messages import (
    Charge,
    DeliveryReport,
    Kind,
    Message,
    MessageFilter,
    Outgoing,
    SubmitResult,
)
from smsgate.core.states import (
    MessageState,
    refund_sources,
    report_sources,
    sources,
)
from smsgate.store import tables as t
from smsgate.store.db import GroupRolledBack, reading, writing
from smsgate.store.ledger import post
from smsgate.store.parts import PartHit, apply_part_reports, record_parts, settled_messages

log = logging.getLogger(__name__)

S = MessageState


def _may_become(target: MessageState) -> sa.ColumnElement[bool]:
    """``state`` is one that may move to ``target``."""
    return t.messages.c.state.in_(sorted(s.value for s in sources(target)))


# Statements built once: the group commit runs them with many parameter sets each.
_m, _o, _a = t.messages, t.outbox, t.accounts
_BATCH_COLUMNS = (
    t.batches,
    (
        "id",
        "account_id",
        "product_id",
        "kind",
        "numbers",
        "units",
        "cost",
        "client_ip",
        "created_at",
    ),
)
_NEXT_BATCH_IDS = sa.text(
    "SELECT nextval(pg_get_serial_sequence('batches', 'id')) FROM generate_series(1, :n)"
)
_MESSAGE_COLUMNS = (
    _m,
    (
        "batch_id",
        "account_id",
        "product_id",
        "kind",
        "phone",
        "content",
        "units",
        "cost",
        "state",
        "carrier",
        "created_at",
    ),
)
_LEDGER_COLUMNS = (t.ledger, ("account_id", "delta", "kind", "ref", "at"))
_ENQUEUE_BATCHES = _o.insert().from_select(
    ["message_id", "available_at"],
    sa.select(_m.c.id, sa.bindparam("at", type_=t.UTCDateTime())).where(
        _m.c.batch_id.in_(sa.bindparam("batch_ids", expanding=True))
    ),
)
_DEBIT = (
    _a.update()
    .where(_a.c.id == sa.bindparam("account"), _a.c.balance >= sa.bindparam("amount"))
    .values(
        balance=_a.c.balance - sa.bindparam("amount"),
        sent=_a.c.sent + sa.bindparam("sent"),
    )
)


def _states_sql(states: frozenset[MessageState]) -> str:
    """``state IN (...)`` for statements written out below (our own enum values only)."""
    return "state IN (" + ", ".join(f"'{s.value}'" for s in sorted(states)) + ")"


# Per-message updates of a dispatch round or a batch of delivery reports, for the driver's
# executemany (see _insert_rows); "?" becomes the driver's own placeholder.
# An empty carrier name (a result no dispatcher stamped) keeps the stored one.
_SUBMITTED = (
    "UPDATE messages SET state = ?, carrier = COALESCE(NULLIF(?, ''), carrier), "
    "carrier_ref = ?, submitted_at = ? "
    f"WHERE id = ? AND {_states_sql(sources(S.SUBMITTED))}"
)
_LATE_REF = (
    "UPDATE messages SET carrier = COALESCE(NULLIF(?, ''), carrier), carrier_ref = ?, "
    f"submitted_at = ? WHERE id = ? AND state = '{S.UNKNOWN.value}' AND carrier_ref IS NULL"
)
_MAYBE_TAKEN = (
    "UPDATE messages SET state = ?, carrier = COALESCE(NULLIF(?, ''), carrier), error = ?, "
    f"submitted_at = ? WHERE id = ? AND {_states_sql(sources(S.UNKNOWN))}"
)
_SETTLE = "UPDATE messages SET state = ?, error = ?, done_at = ? WHERE id = ? AND state = ?"
_RETRY_LATER = (
    _o.update()
    .where(_o.c.message_id == sa.bindparam("msg"))
    .values(claimed_by=None, claimed_at=None, available_at=sa.bindparam("due"))
)
_DEQUEUE = _o.delete().where(_o.c.message_id.in_(sa.bindparam("ids", expanding=True)))


@dataclass(frozen=True, slots=True)
class Claimed:
    message: Outgoing
    product_id: str
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
        (checked per request, in order, so it fails alone), or the exception that kept
        it from being written. If the batched write fails, each charge is retried alone,
        so one bad request cannot fail its neighbours, and a neighbour that did commit
        is reported as committed.
        """
        try:
            with writing(self.engine) as conn:
                return list(self._write_batch(conn, charges))
        except (sa.exc.DBAPIError, GroupRolledBack) as exc:
            if len(charges) == 1:
                return [_detached(exc)]
            log.exception("group commit of %d requests failed; retrying one by one", len(charges))
        return [self._write_alone(charge) for charge in charges]

    def _write_alone(self, charge: Charge) -> int | Exception | None:
        try:
            with writing(self.engine) as conn:
                return self._write_batch(conn, [charge])[0]
        except (sa.exc.DBAPIError, GroupRolledBack) as exc:
            log.exception("send request of account %d could not be written", charge.account_id)
            return _detached(exc)

    def _write_batch(self, conn: sa.Connection, charges: Sequence[Charge]) -> list[int | None]:
        """One statement per table for the whole group (executemany), whatever its size."""
        paid_at = self._debit(conn, charges)  # positions of the charges that are paid for
        if not paid_at:
            return [None] * len(charges)
        paid = [charges[i] for i in paid_at]
        at = _time_binder(conn)
        batch_ids = self._reserve_batch_ids(conn, len(paid))
        _insert_rows(
            conn,
            _BATCH_COLUMNS,
            [
                (
                    batch_id,
                    c.account_id,
                    c.product_id,
                    c.kind.value,
                    len(c.phones),
                    c.units,
                    c.cost,
                    c.client_ip[:64],
                    at(c.at),
                )
                for c, batch_id in zip(paid, batch_ids, strict=True)
            ],
        )
        _insert_rows(
            conn,
            _MESSAGE_COLUMNS,
            [
                (
                    batch_id,
                    c.account_id,
                    c.product_id,
                    c.kind.value,
                    phone,
                    c.content,
                    c.units,
                    c.cost_per_message,
                    S.ACCEPTED.value,
                    c.carrier,
                    at(c.at),
                )
                for c, batch_id in zip(paid, batch_ids, strict=True)
                for phone in c.phones
            ],
        )
        conn.execute(
            _ENQUEUE_BATCHES,
            {"batch_ids": list(batch_ids), "at": min(c.at for c in paid)},
        )
        _owe_reports(conn, paid, batch_ids, at)
        _insert_rows(
            conn,
            _LEDGER_COLUMNS,
            [
                (c.account_id, -c.cost, LedgerKind.CHARGE.value, f"batch:{batch_id}", at(c.at))
                for c, batch_id in zip(paid, batch_ids, strict=True)
            ],
        )
        written: list[int | None] = [None] * len(charges)
        for i, batch_id in zip(paid_at, batch_ids, strict=True):
            written[i] = int(batch_id)
        return written

    def _reserve_batch_ids(self, conn: sa.Connection, n: int) -> list[int]:
        """Ids for ``n`` new batches, so that their rows go in with one executemany.

        (An ``INSERT ... RETURNING`` of many rows in order runs row by row on SQLite.)
        PostgreSQL draws them from the column's sequence; on SQLite this transaction
        holds the database's write lock, so the ids after the largest one are free.
        """
        if self._postgres:
            return list(conn.execute(_NEXT_BATCH_IDS, {"n": n}).scalars())
        top = conn.execute(sa.select(sa.func.coalesce(sa.func.max(t.batches.c.id), 0))).scalar()
        return list(range(int(top or 0) + 1, int(top or 0) + 1 + n))

    def _debit(self, conn: sa.Connection, charges: Sequence[Charge]) -> list[int]:
        """The positions of the charges the balances can pay, debited, one update per account.

        Each request is checked against what its account has left after the requests
        before it, so a `41` fails only its own request. The update stays conditional:
        the database refuses a balance below zero even if this arithmetic were wrong.
        """
        accounts = sorted({c.account_id for c in charges})
        query = sa.select(t.accounts.c.id, t.accounts.c.balance).where(
            t.accounts.c.id.in_(accounts)
        )
        if self._postgres:  # other nodes debit the same rows concurrently
            query = query.with_for_update()
        left: dict[int, int] = {row.id: row.balance for row in conn.execute(query)}
        totals: dict[int, int] = defaultdict(int)
        paid = []
        for i, charge in enumerate(charges):
            if left.get(charge.account_id, -1) >= charge.cost:
                left[charge.account_id] -= charge.cost
                totals[charge.account_id] += charge.cost
                paid.append(i)
        if totals:
            moved = conn.execute(
                _DEBIT,
                [
                    {"account": a, "amount": amount, "sent": sent_delta(LedgerKind.CHARGE, -amount)}
                    for a, amount in totals.items()
                ],
            )
            if conn.dialect.supports_sane_multi_rowcount and moved.rowcount != len(totals):
                raise RuntimeError("a balance changed under its row lock; nothing written")
        return paid

    # -- dispatch: claim, submit results, expiry, crash recovery --------------------------

    def claim(self, node: str, limit: int, now: datetime) -> list[Claimed]:
        """Take up to ``limit`` due outbox rows for this node.

        PostgreSQL: concurrent dispatchers skip each other's rows (FOR UPDATE SKIP LOCKED).
        SQLite: one writer at a time, so the claim is serialised by the process's writer.
        """
        due = (
            sa.select(t.outbox.c.message_id)
            .where(t.outbox.c.claimed_by.is_(None), t.outbox.c.available_at <= now)
            .order_by(t.outbox.c.message_id)
            .limit(limit)
        )
        if self._postgres:
            due = due.with_for_update(skip_locked=True)
        with writing(self.engine) as conn:
            ids = list(conn.execute(due).scalars())
            if not ids:
                return []
            conn.execute(
                t.outbox.update()
                .where(t.outbox.c.message_id.in_(ids))
                .values(claimed_by=node, claimed_at=now, attempts=t.outbox.c.attempts + 1)
            )
            m = t.messages
            rows = conn.execute(
                sa.select(
                    m.c.id,
                    m.c.phone,
                    m.c.content,
                    m.c.kind,
                    m.c.units,
                    m.c.product_id,
                    m.c.account_id,
                    m.c.created_at,
                    t.accounts.c.ext_code,
                )
                .join(t.accounts, t.accounts.c.id == m.c.account_id)
                .where(m.c.id.in_(ids))
                .order_by(m.c.id)
            ).all()
            return [
                Claimed(
                    Outgoing(r.id, r.phone, r.content, Kind(r.kind), r.units, r.ext_code),
                    r.product_id,
                    r.account_id,
                    r.created_at,
                )
                for r in rows
            ]

    def record_submits(self, results: Sequence[SubmitResult], now: datetime) -> None:
        """Store what the carrier answered: submitted, maybe taken (`unknown`), try later,
        or failed (refunded)."""
        taken = [r for r in results if r.accepted]
        maybe = [r for r in results if not r.accepted and r.unknown is not None]
        later = [
            r for r in results if not r.accepted and r.unknown is None and r.retry_after is not None
        ]
        refused = [
            r for r in results if not r.accepted and r.unknown is None and r.retry_after is None
        ]
        with writing(self.engine) as conn:
            if taken:
                self._submitted(conn, taken, now)
            if maybe:
                at = _time_binder(conn)(now)
                _execute_many(
                    conn,
                    _MAYBE_TAKEN,
                    [
                        (S.UNKNOWN.value, r.carrier, (r.unknown or "")[:200], at, r.message_id)
                        for r in maybe
                    ],
                )
                conn.execute(_DEQUEUE, {"ids": [r.message_id for r in maybe]})
            if later:
                conn.execute(
                    _RETRY_LATER,
                    [
                        {
                            "msg": r.message_id,
                            "due": now + timedelta(seconds=r.retry_after or 0),
                        }
                        for r in later
                    ],
                )
            if refused:
                self._fail_unsent(
                    conn,
                    [(r.message_id, r.error or S.FAILED.value) for r in refused],
                    S.FAILED,
                    now,
                )

    def _submitted(self, conn: sa.Connection, taken: Sequence[SubmitResult], now: datetime) -> None:
        at = _time_binder(conn)(now)
        refs = [(r.carrier, r.carrier_ref, at, r.message_id) for r in taken]
        _execute_many(conn, _SUBMITTED, [(S.SUBMITTED.value, *ref) for ref in refs])
        # A message reaped as `unknown` while its (slow) submit was out stays unknown, but
        # keeps the carrier's reference, so that its delivery report can still settle it.
        _execute_many(conn, _LATE_REF, refs)
        record_parts(conn, [r for r in taken if len(r.part_refs) > 1])
        conn.execute(_DEQUEUE, {"ids": [r.message_id for r in taken]})

    def _fail_unsent(
        self,
        conn: sa.Connection,
        failures: Sequence[tuple[int, str]],
        state: MessageState,
        now: datetime,
    ) -> None:
        """Messages that never reached a carrier: final state, refund, out of the queue.

        Which of them move is the state machine's call (core/states.py: the refundable
        moves to ``state``); the rows are read under the write lock and updated by id.
        """
        ids = [message_id for message_id, _ in failures]
        m = t.messages
        query = sa.select(m.c.id, m.c.state, m.c.account_id, m.c.cost).where(m.c.id.in_(ids))
        if self._postgres:
            query = query.with_for_update()
        rows = {r.id: r for r in conn.execute(query)}
        reasons = dict(failures)
        never_sent = refund_sources(state)  # accepted: a carrier never had it
        moves = [r for r in rows.values() if MessageState(r.state) in never_sent]
        at = _time_binder(conn)(now)
        _execute_many(
            conn,
            _SETTLE,
            [(state.value, reasons[r.id][:200], at, r.id, r.state) for r in moves],
        )
        conn.execute(_DEQUEUE, {"ids": ids})
        for r in (r for r in moves if r.cost > 0):
            post(conn, r.account_id, r.cost, LedgerKind.REFUND, f"message:{r.id}", now)

    def expire(self, before: datetime, now: datetime, limit: int = 500) -> int:
        """Accepted messages still unsent when their validity ended: expired and refunded."""
        stale = (
            sa.select(t.outbox.c.message_id)
            .join(t.messages, t.messages.c.id == t.outbox.c.message_id)
            .where(t.outbox.c.claimed_by.is_(None), t.messages.c.created_at < before)
            .limit(limit)
        )
        with reading(self.engine) as conn:  # most rounds find none: no write lock for that
            if conn.execute(stale).first() is None:
                return 0
        with writing(self.engine) as conn:
            ids = list(conn.execute(stale).scalars())
            reason = "not submitted within validity"
            self._fail_unsent(conn, [(i, reason) for i in ids], S.EXPIRED, now)
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
        with writing(self.engine) as conn:
            ids = list(conn.execute(sa.select(t.outbox.c.message_id).where(stale)).scalars())
            if not ids:
                return 0
            conn.execute(
                t.messages.update()
                .where(t.messages.c.id.in_(ids), _may_become(S.UNKNOWN))
                .values(state=S.UNKNOWN.value, error="in flight when the dispatcher stopped")
            )
            conn.execute(_DEQUEUE, {"ids": ids})
        log.warning("%d message(s) were in flight at a crash and are now `unknown`", len(ids))
        return len(ids)

    def apply_report(self, report: DeliveryReport) -> bool:
        return self.apply_reports([report])[0]

    def apply_reports(self, reports: Sequence[DeliveryReport]) -> list[bool]:
        """Delivery reports settle submitted (or unknown) messages, many per transaction.

        True per report that settled a message; a duplicate or an unknown reference is
        False. The messages are read under the write lock, each report is judged by the
        state machine (core/states.py), and the moves are written with one executemany.
        """
        with writing(self.engine) as conn:
            # Reports of a part of a multi-part message settle the part; the message
            # follows when its last part has a report (store/parts.py).
            by_part = apply_part_reports(conn, reports, self._postgres)
            whole = [r for r, hit in zip(reports, by_part, strict=True) if hit is None]
            self._settle_from_parts(conn, [hit for hit in by_part if hit])
            settled_whole = self._apply_whole(conn, whole)
            settled_iter = iter(settled_whole)
            return [next(settled_iter) if hit is None else hit.stored for hit in by_part]

    def _settle_from_parts(self, conn: sa.Connection, hits: Sequence[PartHit]) -> None:
        """Messages whose last part just got its report: delivered, or not."""
        at = _time_binder(conn)
        moves = []
        for message_id, state, error, when in settled_messages(conn, hits):
            row = conn.execute(
                sa.select(t.messages.c.state).where(t.messages.c.id == message_id)
            ).first()
            if row is None or MessageState(row.state) not in report_sources(state):
                continue
            moves.append((state.value, error, at(when), message_id, row.state))
        _execute_many(conn, _SETTLE, moves)

    def _apply_whole(self, conn: sa.Connection, reports: Sequence[DeliveryReport]) -> list[bool]:
        m = t.messages
        by_carrier: dict[str, set[str]] = defaultdict(set)
        for r in reports:
            by_carrier[r.carrier].add(r.carrier_ref)
        at = _time_binder(conn)
        found: dict[tuple[str, str], tuple[int, MessageState]] = {}
        for carrier, refs in by_carrier.items():
            query = sa.select(m.c.id, m.c.carrier_ref, m.c.state).where(
                m.c.carrier == carrier, m.c.carrier_ref.in_(refs)
            )
            if self._postgres:
                query = query.with_for_update()
            for row in conn.execute(query):
                found[(carrier, row.carrier_ref)] = (row.id, MessageState(row.state))
        settled: list[bool] = []
        moves: list[tuple[Any, ...]] = []
        for r in reports:
            hit = found.get((r.carrier, r.carrier_ref))
            if hit is None or hit[1] not in report_sources(r.state):
                settled.append(False)
                continue
            message_id, old = hit
            found[(r.carrier, r.carrier_ref)] = (message_id, r.state)  # a duplicate now fails
            moves.append((r.state.value, r.error, at(r.at), message_id, old.value))
            settled.append(True)
        _execute_many(conn, _SETTLE, moves)
        return settled

    # -- reading ----------------------------------------------------------------------

    def messages(self, f: MessageFilter) -> list[Message]:
        m = t.messages
        query = _message_select()
        if f.account_id is not None:
            query = query.where(m.c.account_id == f.account_id)
        if f.phone is not None:
            query = query.where(m.c.phone == f.phone)
        if f.text:
            query = query.where(m.c.content.contains(f.text, autoescape=True))
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


def _owe_reports(
    conn: sa.Connection,
    paid: Sequence[Charge],
    batch_ids: Sequence[int],
    at: Callable[[datetime], Any],
) -> None:
    """A CMPP status report owed under each of a charge's ``report_ids`` for every message
    of its batch, in the charge's own transaction: an accepted SUBMIT never loses the
    reports its customer was promised, whenever the process dies."""
    _execute_many(
        conn,
        "INSERT INTO cmpp_reports (account_id, msg_id, message_id, created_at) "
        "SELECT ?, ?, id, ? FROM messages WHERE batch_id = ? ORDER BY id",
        [
            (c.account_id, msg_id, at(c.at), batch_id)
            for c, batch_id in zip(paid, batch_ids, strict=True)
            for msg_id in c.report_ids
        ],
    )


def _insert_rows(
    conn: sa.Connection, into: tuple[sa.Table, tuple[str, ...]], rows: list[tuple[Any, ...]]
) -> None:
    """Many rows straight to the driver's executemany.

    The group commit writes up to tens of thousands of message rows a second; building
    a parameter dict per row and running it through SQLAlchemy's per-row processing cost
    more than the database's own work. Values must already be in the driver's form
    (see :func:`_time_binder` for timestamps).
    """
    table, columns = into
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    )
    _execute_many(conn, sql, rows)


def _execute_many(conn: sa.Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """``sql`` (with ``?`` placeholders) once per row, in one executemany of the driver."""
    if rows:
        conn.exec_driver_sql(_for_driver(conn.dialect.paramstyle, sql), rows)


@functools.cache
def _for_driver(paramstyle: str, sql: str) -> str:
    return sql if paramstyle == "qmark" else sql.replace("?", "%s")


def _time_binder(conn: sa.Connection) -> Callable[[datetime], Any]:
    """A timestamp as the driver takes it for a UTCDateTime column on this dialect."""
    process = t.UTCDateTime().bind_processor(conn.dialect)
    if process is None:
        return lambda value: value
    return process


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
