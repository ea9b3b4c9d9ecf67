"""SQL for the push queue: claiming due pushes, storing attempts, the per-account circuit.

Claims work like the outbox's: PostgreSQL workers skip each other's rows (FOR UPDATE SKIP
LOCKED) and a claim older than the lease belongs to a dead worker; SQLite has one worker,
serialised by BEGIN IMMEDIATE. The circuit row is updated in the transaction that stores
a failure, under a row lock, so concurrent workers count every failure.

The circuit's rules (when a pause ends, which failures count) are ``core.push_policy``'s:
the SQL here only bounds what is read, and the policy decides on the rows it returns.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from smsgate.core.push_policy import CircuitState, earliest_send_at
from smsgate.core.pushes import AttemptRecord, ClaimedPush, PushAttempt, PushOutcome
from smsgate.core.states import PushState
from smsgate.store import tables as t
from smsgate.store.db import writing

log = logging.getLogger(__name__)

P = PushState
SCAN_FACTOR = 4  # rows looked at per slot, so that one busy account cannot fill a claim
ERROR_CHARS = 200


class SqlPushQueue:
    """The PushQueue port on SQLAlchemy Core (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._postgres = engine.dialect.name == "postgresql"

    def claim_pushes(
        self,
        node: str,
        limit: int,
        now: datetime,
        lease_before: datetime,
        busy: Mapping[int, int] | None = None,
        per_account: int | None = None,
    ) -> list[ClaimedPush]:
        """Take up to ``limit`` due pushes of accounts that are not paused.

        A claim older than ``lease_before`` belongs to a dead worker and is taken over.
        With ``per_account``, an account never has more than that many in flight in
        this worker (``busy``: its attempts in flight now), so that a slow URL cannot
        take every slot. PostgreSQL: concurrent workers skip each other's rows.
        """
        if limit < 1:
            return []
        in_flight = dict(busy or {})
        full = [a for a, n in in_flight.items() if per_account is not None and n >= per_account]
        with writing(self.engine) as conn:
            waiting = _waiting_out_a_pause(conn, now)
            rows = conn.execute(self._due(now, lease_before, [*full, *waiting], limit)).all()
            chosen = _fair_share(rows, limit, per_account, in_flight)
            if not chosen:
                return []
            conn.execute(
                t.pushes.update()
                .where(t.pushes.c.mo_id.in_([r.mo_id for r in chosen]))
                .values(claimed_by=node, claimed_at=now)
            )
        return [_claimed(r) for r in chosen]

    def _due(
        self, now: datetime, lease_before: datetime, exclude: Sequence[int], limit: int
    ) -> sa.Select[tuple[object, ...]]:
        """Pushes due at ``now``, not claimed by a live worker, of accounts not excluded.

        Pushes of paused accounts are among ``exclude``: the database must filter them
        out (the claim reads a bounded number of rows, which they must not fill), so the
        policy's decision is passed in as account ids rather than restated in SQL.
        """
        p, mo, a = t.pushes, t.mo, t.accounts
        query = (
            sa.select(
                p.c.mo_id,
                p.c.account_id,
                p.c.series,
                p.c.attempts,
                p.c.first_attempt_at,
                a.c.mo_url,
                mo.c.phone,
                mo.c.content,
            )
            .join(mo, mo.c.id == p.c.mo_id)
            .join(a, a.c.id == p.c.account_id)
            .where(
                p.c.state == P.PENDING.value,
                p.c.next_at <= now,
                sa.or_(p.c.claimed_by.is_(None), p.c.claimed_at < lease_before),
                _may_receive(now),  # a disabled or expired account's replies are held
            )
            .order_by(p.c.next_at, p.c.mo_id)
            .limit(limit * SCAN_FACTOR)
        )
        if exclude:
            query = query.where(p.c.account_id.not_in(list(exclude)))
        if self._postgres:
            query = query.with_for_update(skip_locked=True, of=p)
        return query

    def record_attempts(
        self, node: str, records: Sequence[AttemptRecord]
    ) -> list[CircuitState | None]:
        """Store attempts, move their pushes on, and update the circuits of failures.

        All in one transaction (attempts that end together share a commit); if it fails,
        each record is stored in a transaction of its own so one bad record cannot lose
        the others. Per record: the new circuit state when it changed (a pause), else None.
        """
        try:
            with writing(self.engine) as conn:
                return self._record(conn, node, records)
        except sa.exc.DBAPIError:
            if len(records) == 1:
                raise
            log.exception("storing %d push attempts together failed; one by one", len(records))
        results: list[CircuitState | None] = []
        for record in records:
            with writing(self.engine) as conn:
                results.extend(self._record(conn, node, [record]))
        return results

    def _record(
        self, conn: sa.Connection, node: str, records: Sequence[AttemptRecord]
    ) -> list[CircuitState | None]:
        conn.execute(t.push_attempts.insert(), [_attempt_values(r.attempt) for r in records])
        for r in records:
            _move_push(conn, node, r.attempt, r.outcome)
        results: list[CircuitState | None] = [None] * len(records)
        # Circuit rows are locked in account order, so two workers never deadlock.
        failed = [i for i, r in enumerate(records) if r.circuit is not None]
        for i in sorted(failed, key=lambda i: (records[i].attempt.account_id, i)):
            results[i] = self._apply_circuit(conn, records[i])
        return results

    def _apply_circuit(self, conn: sa.Connection, record: AttemptRecord) -> CircuitState | None:
        """The failure's effect on its account's circuit, under the circuit row's lock.

        The rule is given the account's failures since the window's start (this one
        included) and evaluated at the latest of them, so a failure that ended later but
        was committed first by another worker is counted too.
        """
        attempt, rule = record.attempt, record.circuit
        assert rule is not None
        state = self._lock_circuit(conn, attempt.account_id)
        since = record.failures_since or attempt.at
        failures = _failure_times(conn, attempt.account_id, state, since)
        if attempt.at not in failures:  # at or before counted_since: it counts for nothing
            failures.append(attempt.at)
        new = rule(state, failures, max(failures))
        if new == state:
            return None
        conn.execute(
            t.push_circuit.update()
            .where(t.push_circuit.c.account_id == attempt.account_id)
            .values(paused_until=new.paused_until, counted_since=new.counted_since)
        )
        return new

    def _lock_circuit(self, conn: sa.Connection, account_id: int) -> CircuitState:
        """The account's circuit row, created if missing and locked until commit, so that
        two workers recording failures at once cannot both miss the threshold."""
        insert = (postgresql.insert if self._postgres else sqlite.insert)(t.push_circuit)
        conn.execute(insert.values(account_id=account_id).on_conflict_do_nothing())
        c = t.push_circuit
        query = sa.select(c.c.paused_until, c.c.counted_since).where(c.c.account_id == account_id)
        if self._postgres:
            query = query.with_for_update()
        row = conn.execute(query).one()
        return CircuitState(row.paused_until, row.counted_since)

    def settle_without_url(self, node: str, mo_id: int, now: datetime) -> None:
        """The account has no URL: the push fails at once, without an attempt or any effect
        on the circuit; it can be re-pushed once a URL is set."""
        p = t.pushes
        with writing(self.engine) as conn:
            conn.execute(
                p.update()
                .where(p.c.mo_id == mo_id, p.c.claimed_by == node)
                .values(
                    state=P.FAILED.value,
                    claimed_by=None,
                    claimed_at=None,
                    last_error="the account has no MO URL",
                    done_at=now,
                )
            )

    def give_up_held(self, received_before: datetime, now: datetime) -> int:
        """Replies held for a disabled or expired account (never attempted) that were
        received before ``received_before`` (the retry window has passed) fail, with the
        reason; they stay listed and can be re-pushed once the account is active."""
        p = t.pushes
        held = (
            sa.select(p.c.mo_id)
            .join(t.accounts, t.accounts.c.id == p.c.account_id)
            .where(
                p.c.state == P.PENDING.value,
                p.c.attempts == 0,
                p.c.claimed_by.is_(None),
                p.c.next_at < received_before,
                sa.not_(_may_receive(now)),
            )
        )
        with writing(self.engine) as conn:
            ids = list(conn.execute(held).scalars())
            if ids:
                conn.execute(
                    p.update()
                    .where(p.c.mo_id.in_(ids), p.c.state == P.PENDING.value, p.c.attempts == 0)
                    .values(
                        state=P.FAILED.value,
                        last_error="held: the account was disabled or expired for the whole "
                        "retry window",
                        done_at=now,
                    )
                )
        return len(ids)

    def release_claims(self, node: str | None = None, exclude_node: str | None = None) -> int:
        """Put claimed pushes back in the queue: this node's (at stop) or every other
        node's (at start on SQLite, where only one process works the queue).

        An attempt in flight when its process died may have reached the receiver; it is
        made again. Receivers see SMSBao's own retries anyway, so a duplicate push is
        the lesser harm; a lost reply is not recoverable.
        """
        p = t.pushes
        claimed: sa.ColumnElement[bool] = p.c.claimed_by.is_not(None)
        if node is not None:
            claimed = claimed & (p.c.claimed_by == node)
        if exclude_node is not None:
            claimed = claimed & (p.c.claimed_by != exclude_node)
        with writing(self.engine) as conn:
            released = conn.execute(p.update().where(claimed).values(claimed_by=None))
        return int(released.rowcount)


def circuits_paused_near(now: datetime) -> sa.Select[tuple[object, ...]]:
    """The circuits whose pause has not ended before ``now``: the few the policy must
    look at to know which accounts are paused at ``now``.

    A bound on the read, not the rule: whether a pause still holds at exactly its end is
    ``core.push_policy``'s to say, so the bound keeps that instant and the policy decides.
    """
    c = t.push_circuit
    return sa.select(c.c.account_id, c.c.paused_until, c.c.counted_since).where(
        c.c.paused_until >= now
    )


def _waiting_out_a_pause(conn: sa.Connection, now: datetime) -> list[int]:
    """Accounts whose pushes due at ``now`` may not go out yet (``earliest_send_at``).

    Waiting out a pause is not an attempt: such pushes are simply not claimed, so they
    spend none of their retries.
    """
    rows = conn.execute(circuits_paused_near(now)).all()
    return [int(r.account_id) for r in rows if earliest_send_at(now, r.paused_until) > now]


def _fair_share(
    rows: Sequence[sa.Row[tuple[object, ...]]],
    limit: int,
    per_account: int | None,
    taken: dict[int, int],
) -> list[sa.Row[tuple[object, ...]]]:
    """The rows to claim: in due order, skipping an account once it has its share."""
    chosen = []
    for row in rows:
        account_id = int(row._mapping["account_id"])
        if per_account is not None and taken.get(account_id, 0) >= per_account:
            continue
        taken[account_id] = taken.get(account_id, 0) + 1
        chosen.append(row)
        if len(chosen) == limit:
            break
    return chosen


def _may_receive(now: datetime) -> sa.ColumnElement[bool]:
    """The account (joined) is active and not expired: its replies may be pushed."""
    a = t.accounts
    return sa.and_(a.c.status == "active", sa.or_(a.c.expires_at.is_(None), a.c.expires_at > now))


def _claimed(r: sa.Row[tuple[object, ...]]) -> ClaimedPush:
    m = r._mapping
    return ClaimedPush(
        mo_id=int(m["mo_id"]),
        account_id=int(m["account_id"]),
        url=m["mo_url"] or None,
        phone=m["phone"],
        content=m["content"],
        series=int(m["series"]),
        attempts=int(m["attempts"]),
        first_attempt_at=m["first_attempt_at"],
    )


def _move_push(conn: sa.Connection, node: str, attempt: PushAttempt, outcome: PushOutcome) -> None:
    """The push row after an attempt, if this worker still holds its claim."""
    p = t.pushes
    final = outcome.state is not P.PENDING
    conn.execute(
        p.update()
        .where(p.c.mo_id == attempt.mo_id, p.c.claimed_by == node, p.c.series == attempt.series)
        .values(
            state=outcome.state.value,
            attempts=outcome.attempts,
            first_attempt_at=outcome.first_attempt_at,
            next_at=outcome.next_at if outcome.next_at is not None else p.c.next_at,
            claimed_by=None,
            claimed_at=None,
            last_error=_short(outcome.error),
            done_at=attempt.at if final else None,
        )
    )


def _failure_times(
    conn: sa.Connection, account_id: int, state: CircuitState, since: datetime
) -> list[datetime]:
    """The account's failures the circuit may count: in the window and after
    ``counted_since`` (the policy filters again; the bounds keep the read small)."""
    pa = t.push_attempts
    start = since if state.counted_since is None else max(since, state.counted_since)
    query = sa.select(pa.c.at).where(
        pa.c.account_id == account_id, pa.c.ok.is_(False), pa.c.at > start
    )
    return list(conn.execute(query).scalars())


def _attempt_values(a: PushAttempt) -> dict[str, object]:
    return {**asdict(a), "body": _short(a.body), "error": _short(a.error)}


def _short(text: str | None) -> str | None:
    return None if text is None else text[:ERROR_CHARS]
