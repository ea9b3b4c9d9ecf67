"""The status reports (table ``cmpp_reports``) and replies (``cmpp_replies``) owed to CMPP
customers.

A row is written for each message of a SUBMIT the CMPP server accepted, per Msg_Id the
customer was given, in the transaction that charges for it (store/messages.py). It is due
once the message reaches a final state and is deleted when the customer answers the DELIVER
that carried it. Until then it survives restarts and disconnections: the customer gets it
on its next login.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from smsgate.core.cmpp import DueReply, DueReport
from smsgate.core.states import TERMINAL_STATES, MessageState
from smsgate.store import tables as t
from smsgate.store.db import reading, writing

_FINAL = sorted(s.value for s in TERMINAL_STATES)


class SqlCmppReports:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def due(self, account_id: int, after: int, limit: int = 200) -> list[DueReport]:
        """Reports whose message is final, oldest first, with row ids above ``after``."""
        r, m = t.cmpp_reports, t.messages
        query = (
            sa.select(
                r.c.id, r.c.msg_id, m.c.phone, m.c.state, m.c.error, m.c.created_at, m.c.done_at
            )
            .join(m, m.c.id == r.c.message_id)
            .where(r.c.account_id == account_id, r.c.id > after, m.c.state.in_(_FINAL))
            .order_by(r.c.id)
            .limit(limit)
        )
        with reading(self.engine) as conn:
            return [
                DueReport(
                    row_id=row.id,
                    msg_id=row.msg_id,
                    phone=row.phone,
                    state=MessageState(row.state),
                    error=row.error,
                    submitted_at=row.created_at,
                    done_at=row.done_at or row.created_at,
                )
                for row in conn.execute(query)
            ]

    def done(self, row_ids: Sequence[int]) -> None:
        if not row_ids:
            return
        with writing(self.engine) as conn:
            conn.execute(t.cmpp_reports.delete().where(t.cmpp_reports.c.id.in_(row_ids)))

    def due_replies(self, account_id: int, limit: int = 200) -> list[DueReply]:
        r, mo = t.cmpp_replies, t.mo
        query = (
            sa.select(r.c.id, mo.c.phone, mo.c.dest, mo.c.content)
            .join(mo, mo.c.id == r.c.mo_id)
            .where(r.c.account_id == account_id)
            .order_by(r.c.id)
            .limit(limit)
        )
        with reading(self.engine) as conn:
            return [
                DueReply(row.id, row.phone, row.dest, row.content) for row in conn.execute(query)
            ]

    def replies_done(self, row_ids: Sequence[int]) -> None:
        if not row_ids:
            return
        with writing(self.engine) as conn:
            conn.execute(t.cmpp_replies.delete().where(t.cmpp_replies.c.id.in_(row_ids)))
