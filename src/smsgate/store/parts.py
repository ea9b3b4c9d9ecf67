"""Messages a carrier took in several parts: one reference and one report per part.

A long message may go out as several SMS, each with the carrier's own id and its own
delivery report. Every part's report is kept; the message is `delivered` when every
part is, and otherwise takes the state of its first part that was not delivered, once
the last part has reported.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from smsgate.core.messages import DeliveryReport, SubmitResult
from smsgate.core.states import MessageState
from smsgate.store import tables as t

_p = t.message_parts


@dataclass(frozen=True, slots=True)
class PartHit:
    """A report that named a part: whether it was stored (False: a duplicate)."""

    message_id: int
    stored: bool


def record_parts(conn: sa.Connection, taken: Sequence[SubmitResult]) -> None:
    """The parts of messages just taken, in the submit's transaction."""
    rows = [
        {"message_id": r.message_id, "part": i, "carrier": r.carrier, "carrier_ref": ref[:64]}
        for r in taken
        for i, ref in enumerate(r.part_refs, start=1)
    ]
    if rows:
        conn.execute(_p.insert(), rows)


def apply_part_reports(
    conn: sa.Connection, reports: Sequence[DeliveryReport], lock: bool
) -> list[PartHit | None]:
    """Store the reports that name a part; None for each report that names none."""
    by_carrier: dict[str, set[str]] = defaultdict(set)
    for r in reports:
        by_carrier[r.carrier].add(r.carrier_ref)
    parts: dict[tuple[str, str], tuple[int, int, str | None]] = {}
    for carrier, refs in by_carrier.items():
        query = sa.select(_p.c.message_id, _p.c.part, _p.c.carrier_ref, _p.c.state).where(
            _p.c.carrier == carrier, _p.c.carrier_ref.in_(refs)
        )
        if lock:
            query = query.with_for_update()
        for row in conn.execute(query):
            parts[(carrier, row.carrier_ref)] = (row.message_id, row.part, row.state)
    if not parts:
        return [None] * len(reports)
    hits: list[PartHit | None] = []
    for r in reports:
        found = parts.get((r.carrier, r.carrier_ref))
        if found is None:
            hits.append(None)
            continue
        message_id, part, state = found
        if state is not None:  # this part already has its report
            hits.append(PartHit(message_id, stored=False))
            continue
        conn.execute(
            _p.update()
            .where(_p.c.message_id == message_id, _p.c.part == part)
            .values(state=r.state.value, error=(r.error or None), reported_at=r.at)
        )
        parts[(r.carrier, r.carrier_ref)] = (message_id, part, r.state.value)
        hits.append(PartHit(message_id, stored=True))
    return hits


def settled_messages(
    conn: sa.Connection, hits: Sequence[PartHit]
) -> Iterator[tuple[int, MessageState, str | None, datetime]]:
    """(message id, state, error, at) for each message whose parts have all reported."""
    ids = sorted({h.message_id for h in hits if h.stored})
    if not ids:
        return
    rows = conn.execute(
        sa.select(_p.c.message_id, _p.c.part, _p.c.state, _p.c.error, _p.c.reported_at)
        .where(_p.c.message_id.in_(ids))
        .order_by(_p.c.message_id, _p.c.part)
    ).all()
    by_message: defaultdict[int, list[Any]] = defaultdict(list)
    for row in rows:
        by_message[row.message_id].append(row)
    for message_id, its_parts in by_message.items():
        if any(p.state is None for p in its_parts):
            continue
        last = max(p.reported_at for p in its_parts)
        failed = [p for p in its_parts if p.state != MessageState.DELIVERED.value]
        if not failed:
            yield message_id, MessageState.DELIVERED, None, last
        else:
            first = failed[0]
            error = f"part {first.part}/{len(its_parts)}: {first.error or first.state}"
            yield message_id, MessageState(first.state), error[:200], last
