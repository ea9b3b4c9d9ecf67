"""SQL for outcomes nobody reported: the report timeout, and settling by an operator.

A message handed to a carrier waits for its delivery report in `submitted`. When none
comes within the report timeout it becomes `unknown`, with the reason, and an operator
settles it (`smsgate messages settle`): delivered, or failed and perhaps refunded.
Every move is a conditional update (``WHERE state = <what it was>``), so two settlers
racing for one message move it once; a refund is written only with that move, and the
ledger's unique index on a message's refund is the last line of defence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from smsgate import errors
from smsgate.core import actors
from smsgate.core.accounts import LedgerKind
from smsgate.core.states import MessageState
from smsgate.store import tables as t
from smsgate.store.audit import audit
from smsgate.store.db import reading, writing
from smsgate.store.ledger import post

S = MessageState
_m = t.messages
SETTLE_FROM = frozenset({S.UNKNOWN, S.SUBMITTED})  # what an operator may settle
SETTLE_TO = frozenset({S.DELIVERED, S.FAILED})
SETTLE_LIMIT = 10_000  # messages one filtered settle may move


@dataclass(frozen=True, slots=True)
class SettleFilter:
    """Which messages a filtered settle takes (all given conditions hold)."""

    carrier: str | None = None
    state: MessageState = S.UNKNOWN
    before: datetime | None = None  # accepted before this time
    account_id: int | None = None


@dataclass(slots=True)
class Settled:
    """What a settle did: the messages it moved, refunded, and left alone (with why)."""

    moved: list[int] = field(default_factory=list)
    refunded: list[int] = field(default_factory=list)
    refund_units: int = 0
    skipped: dict[int, str] = field(default_factory=dict)


class SqlOutcomes:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def time_out_reports(
        self, cutoffs: Mapping[str, datetime], default: datetime, now: datetime
    ) -> int:
        """Messages submitted before their carrier's cutoff, still without a final report,
        become `unknown` with the reason; returns how many. ``cutoffs`` holds per-carrier
        cutoffs; every other carrier uses ``default``."""
        awaiting = _m.c.state == S.SUBMITTED.value
        moved = 0
        with writing(self.engine) as conn:
            for carrier, cutoff in cutoffs.items():
                moved += self._time_out(conn, awaiting & (_m.c.carrier == carrier), cutoff, now)
            others = awaiting & _m.c.carrier.not_in(list(cutoffs)) if cutoffs else awaiting
            moved += self._time_out(conn, others, default, now)
        return moved

    @staticmethod
    def _time_out(
        conn: sa.Connection, which: sa.ColumnElement[bool], cutoff: datetime, now: datetime
    ) -> int:
        hours = (now - cutoff).total_seconds() / 3600
        reason = f"no delivery report within {hours:g} h of submission"
        result = conn.execute(
            _m.update()
            .where(which, _m.c.submitted_at < cutoff)
            .values(state=S.UNKNOWN.value, error=reason)
        )
        return int(result.rowcount or 0)

    def awaiting_reports(self, carrier: str) -> list[tuple[str, str]]:
        """(carrier reference, phone) of the carrier's messages waiting for a report:
        what a carrier that keeps its pending reports in memory re-derives on start."""
        with reading(self.engine) as conn:
            rows = conn.execute(
                sa.select(_m.c.carrier_ref, _m.c.phone).where(
                    _m.c.state == S.SUBMITTED.value,
                    _m.c.carrier == carrier,
                    _m.c.carrier_ref.is_not(None),
                )
            ).all()
        return [(str(r.carrier_ref), str(r.phone)) for r in rows]

    def matching(self, f: SettleFilter, limit: int = SETTLE_LIMIT) -> list[int]:
        """Ids of the messages a filtered settle would take, oldest first."""
        query = sa.select(_m.c.id).where(_m.c.state == f.state.value)
        if f.carrier is not None:
            query = query.where(_m.c.carrier == f.carrier)
        if f.before is not None:
            query = query.where(_m.c.created_at < f.before)
        if f.account_id is not None:
            query = query.where(_m.c.account_id == f.account_id)
        with reading(self.engine) as conn:
            return list(conn.execute(query.order_by(_m.c.id).limit(limit)).scalars())

    def settle(
        self,
        ids: Sequence[int],
        to: MessageState,
        *,
        refund: bool,
        now: datetime,
        actor: str | None = None,
    ) -> Settled:
        """Settle each message (unknown or submitted) as ``to``: one audit row per move,
        one ledger row where money moves (a refund of a failed message's cost)."""
        if to not in SETTLE_TO:
            raise errors.InvalidInput("a message is settled as delivered or failed")
        if refund and to is not S.FAILED:
            raise errors.InvalidInput("only a failed message can be refunded")
        done = Settled()
        with writing(self.engine) as conn:
            for message_id in ids:
                self._settle_one(conn, message_id, to, refund, now, actor or actors.current(), done)
        return done

    def _settle_one(
        self,
        conn: sa.Connection,
        message_id: int,
        to: MessageState,
        refund: bool,
        now: datetime,
        actor: str,
        done: Settled,
    ) -> None:
        row = conn.execute(
            sa.select(_m.c.state, _m.c.account_id, _m.c.cost).where(_m.c.id == message_id)
        ).first()
        if row is None:
            done.skipped[message_id] = "no such message"
            return
        was = MessageState(row.state)
        if was not in SETTLE_FROM:
            done.skipped[message_id] = f"already {was.value}"
            return
        reason = f"settled by {actor}" + (" (refunded)" if refund else "")
        moved = conn.execute(
            _m.update()
            .where(_m.c.id == message_id, _m.c.state == was.value)
            .values(state=to.value, error=reason, done_at=now)
        )
        if moved.rowcount != 1:  # someone else settled it in between
            done.skipped[message_id] = "settled meanwhile"
            return
        done.moved.append(message_id)
        detail = f"{was.value} -> {to.value}"
        if refund and row.cost > 0 and not _refunded(conn, message_id):
            post(conn, row.account_id, row.cost, LedgerKind.REFUND, f"message:{message_id}", now)
            done.refunded.append(message_id)
            done.refund_units += int(row.cost)
            detail += f", refund {row.cost}"
        audit(conn, actor, "message.settle", f"message:{message_id}", detail, now)


def _refunded(conn: sa.Connection, message_id: int) -> bool:
    return (
        conn.execute(
            sa.select(t.ledger.c.id).where(
                t.ledger.c.kind == LedgerKind.REFUND.value,
                t.ledger.c.ref == f"message:{message_id}",
            )
        ).first()
        is not None
    )
