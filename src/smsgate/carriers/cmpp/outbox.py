"""What a CMPP customer is owed, sent over one of its connections as DELIVERs.

Status reports (Registered_Delivery = 1) and user replies (0) come from the database
(``cmpp_reports``, ``cmpp_replies``); at most ``window`` DELIVERs of a connection are
unanswered at a time, and a row another connection of the account is already sending is
skipped. A row is deleted only when its DELIVER_RESP comes back (a reply: every part's);
a connection that closes first releases its rows to the next one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from smsgate.carriers.cmpp import codec
from smsgate.carriers.cmpp.codec import Command, Version
from smsgate.carriers.cmpp.links import PduStream
from smsgate.core import cmpp
from smsgate.core.accounts import Account
from smsgate.core.cmpp import DueReply, DueReport
from smsgate.core.segments import Coding, concat_udh, encode_text, split

if TYPE_CHECKING:
    from smsgate.carriers.cmpp.server import CmppServer

log = logging.getLogger(__name__)

REPORT, REPLY = "report", "reply"


class Outbox:
    def __init__(
        self, server: CmppServer, account: Account, stream: PduStream, version: Version
    ) -> None:
        self.server = server
        self.account = account
        self.stream = stream
        self.version = version
        self.sent: dict[int, tuple[str, int]] = {}  # DELIVER sequence -> (kind, row)
        self.reply_parts: dict[int, int] = {}  # reply row -> its parts not yet answered
        self.reply_refs = 0

    def _in_flight(self, kind: str) -> set[int]:
        return self.server.in_flight.setdefault((self.account.id, kind), set())

    async def run(self, closed: Callable[[], bool]) -> None:
        """Poll for what is owed and send it, until the connection closes."""
        while not closed():
            try:
                await self._send_due()
            except (ConnectionError, OSError):
                return  # the read loop sees the link go
            except Exception:  # the database, say: try again next round
                log.exception(
                    "CMPP %s: could not send what the account is owed", self.stream.peer_ip
                )
            await asyncio.sleep(self.server.config.report_poll_seconds)

    def release(self) -> None:
        """The connection closed: what it sent unanswered goes out on another one."""
        for kind, row in self.sent.values():
            self._in_flight(kind).discard(row)

    def answered(self, sequence: int) -> None:
        """A DELIVER_RESP: the report (or the reply, once all its parts) is forgotten."""
        sent = self.sent.pop(sequence, None)
        if sent is None:
            return
        kind, row = sent
        if kind == REPLY:
            self.reply_parts[row] -= 1
            if self.reply_parts[row] > 0:
                return
            del self.reply_parts[row]
        # Not one of the session's tasks: an answered DELIVER is forgotten even when the
        # link closes right after the answer.
        task = asyncio.ensure_future(self._forget(kind, row))
        self.server.chores.add(task)
        task.add_done_callback(self.server.chores.discard)

    async def _forget(self, kind: str, row: int) -> None:
        backend = self.server.backend
        await (backend.done([row]) if kind == REPORT else backend.replies_done([row]))
        self._in_flight(kind).discard(row)

    async def _send_due(self) -> None:
        backend = self.server.backend
        room = self.server.config.window - len(self.sent)
        if room <= 0:
            return
        sending = self._in_flight(REPORT)
        for report in await backend.due(self.account.id, 0):
            if room <= 0:
                return
            if report.row_id not in sending:
                sending.add(report.row_id)
                await self._send_report(report)
                room -= 1
        sending = self._in_flight(REPLY)
        for reply in await backend.due_replies(self.account.id):
            if room <= 0:
                return
            if reply.row_id not in sending:
                sending.add(reply.row_id)
                room -= await self._send_reply(reply)

    async def _send_report(self, report: DueReport) -> None:
        content = codec.encode_report(
            codec.StatusReport(
                codec.msg_id_bytes(report.msg_id),
                cmpp.stat_for(report.state, report.error),
                cmpp.report_time(report.submitted_at),
                cmpp.report_time(report.done_at),
                report.phone,
            ),
            self.version,
        )
        deliver = codec.Deliver(
            msg_id=self.server.msg_ids.next(self.server.now()),
            dest_id=self.account.cmpp_sp_id or "",
            src_terminal_id=report.phone,
            msg_content=content,
            registered_delivery=1,
            msg_fmt=0,
        )
        await self._deliver(REPORT, report.row_id, deliver)

    async def _send_reply(self, reply: DueReply) -> int:
        """The reply as DELIVERs (UCS-2, parts with a UDH when long); how many were sent."""
        pieces = split(reply.content, Coding.UCS2)
        self.reply_refs = (self.reply_refs + 1) & 0xFF
        self.reply_parts[reply.row_id] = len(pieces)
        for seq, piece in enumerate(pieces, start=1):
            payload = encode_text(piece, Coding.UCS2)
            if len(pieces) > 1:
                payload = concat_udh(self.reply_refs, len(pieces), seq) + payload
            deliver = codec.Deliver(
                msg_id=self.server.msg_ids.next(self.server.now()),
                dest_id=reply.dest or self.account.cmpp_sp_id or "",
                src_terminal_id=reply.phone,
                msg_content=payload,
                msg_fmt=Coding.UCS2,
                tp_udhi=1 if len(pieces) > 1 else 0,
            )
            await self._deliver(REPLY, reply.row_id, deliver)
        return len(pieces)

    async def _deliver(self, kind: str, row: int, deliver: codec.Deliver) -> None:
        sequence = self.stream.next_sequence()
        self.sent[sequence] = (kind, row)
        body = codec.encode_deliver(deliver, self.version)
        await self.stream.send(Command.DELIVER, sequence, body)
