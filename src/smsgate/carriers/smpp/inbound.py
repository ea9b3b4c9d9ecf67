"""What a deliver_sm carries, handed to the sink: a delivery receipt or a user's reply (MO).

The answer to every deliver_sm waits for the sink to return (the report or the reply is
committed), so an answered deliver_sm is never lost in a crash. A part of a concatenated
reply (UDH, or the SAR TLVs) is answered when the whole reply is committed: when its
last part arrives, in any order, or, if a part never comes, when the group times out and
what arrived is committed as it is. A part repeated while its group is open joins the
group once and is answered with it. A sink failure answers ``ESME_RX_T_APPN`` (a
temporary error), so the SMSC sends the deliver_sm again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime

from smsgate.carriers.smpp import receipts
from smsgate.carriers.smpp.pdu import ShortMessage, Status, Tag, tlv_int
from smsgate.core.messages import DeliveryReport
from smsgate.core.replies import IncomingReply
from smsgate.core.segments import Coding, Concat, Reassembler, decode_text, parse_udh
from smsgate.ports import DeliverySink

log = logging.getLogger(__name__)

UDHI = 0x40  # esm_class: short_message starts with a user data header


def mo_text(sm: ShortMessage) -> tuple[Concat | None, str]:
    """Where a reply part sits (UDH or SAR TLVs) and its text."""
    body = sm.short_message or sm.tlv(Tag.MESSAGE_PAYLOAD) or b""
    concat = None
    if sm.esm_class & UDHI:
        concat, body = parse_udh(body)
    total = tlv_int(sm.tlv(Tag.SAR_TOTAL_SEGMENTS))
    seq = tlv_int(sm.tlv(Tag.SAR_SEGMENT_SEQNUM))
    ref = tlv_int(sm.tlv(Tag.SAR_MSG_REF_NUM))
    if concat is None and total and seq and ref is not None and 1 <= seq <= total:
        concat = Concat(ref, total, seq)
    if concat is not None and concat.total > 1 and sm.data_coding == Coding.UCS2:
        return concat, _ucs2_part(body)
    return concat, decode_text(body, sm.data_coding)


def _ucs2_part(body: bytes) -> str:
    """A UCS-2 part's text, a surrogate cut off at either end kept as it is.

    smsgate never splits a surrogate pair, but a phone may: the halves are joined again
    once the reply is whole (:func:`whole_text`).
    """
    try:
        return body.decode("utf-16-be", errors="surrogatepass")
    except UnicodeDecodeError:  # an odd number of octets
        return decode_text(body, Coding.UCS2)


def whole_text(text: str) -> str:
    """Pair the surrogate halves that met at part boundaries; a lone one becomes U+FFFD."""
    raw = text.encode("utf-16-be", errors="surrogatepass")
    return raw.decode("utf-16-be", errors="replace")


class Inbound:
    def __init__(
        self,
        carrier: str,
        reassembly_seconds: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
        id_bases: str = "as-is",
    ) -> None:
        self._carrier = carrier
        self._id_bases = id_bases
        self._sink: DeliverySink | None = None
        self._reassembler = Reassembler(reassembly_seconds)
        self._waiting: defaultdict[str, list[asyncio.Future[None]]] = defaultdict(list)
        self._heads: dict[str, ShortMessage] = {}  # a group's first part: its addresses
        self._monotonic = monotonic
        self.receipts = 0
        self.replies = 0
        self.last_receipt: datetime | None = None

    def attach(self, sink: DeliverySink) -> None:
        self._sink = sink

    async def on_deliver(self, sm: ShortMessage) -> int:
        """Handle one deliver_sm; the command_status to answer it with."""
        try:
            if receipts.is_receipt(sm):
                await self._receipt(sm)
            else:
                await self._reply(sm)
        except Exception:
            log.exception("%s: deliver_sm not committed; asking the SMSC to resend", self._carrier)
            return Status.RX_T_APPN
        return Status.OK

    async def _receipt(self, sm: ShortMessage) -> None:
        receipt = receipts.parse(sm)
        if receipt is None:
            log.warning("%s: receipt without id or stat: %r", self._carrier, sm.short_message)
            return
        state = receipt.state
        if state is None:
            return  # intermediate (ENROUTE, ACCEPTD): the final one follows
        at = datetime.now(UTC)
        ref = receipts.receipted_id(receipt.message_id, self._id_bases)
        report = DeliveryReport(self._carrier, ref, state, receipt.error, at)
        await self._require_sink().delivery_report(report)
        self.receipts += 1
        self.last_receipt = at

    async def _reply(self, sm: ShortMessage) -> None:
        concat, text = mo_text(sm)
        if concat is None or concat.total <= 1:
            await self._commit(sm, text)
            return
        key = "\0".join((sm.source_addr, sm.destination_addr, str(concat.ref), str(concat.total)))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[key].append(done)
        self._heads.setdefault(key, sm)
        whole = self._reassembler.add(key, concat, text, self._monotonic())
        if whole is not None:
            await self._finish(key, whole)
        await done

    async def sweep(self) -> None:
        """Commit the groups whose missing parts did not come in time (call every second)."""
        for key, text in self._reassembler.expired(self._monotonic()):
            log.warning("%s: reply parts missing after the timeout; kept as it is", self._carrier)
            await self._finish(key, text)

    async def _finish(self, key: str, text: str) -> None:
        waiting = self._waiting.pop(key, [])
        head = self._heads.pop(key)
        try:
            await self._commit(head, whole_text(text))
        except Exception as exc:
            for future in waiting:
                if not future.done():
                    future.set_exception(exc)
            return
        for future in waiting:
            if not future.done():
                future.set_result(None)

    async def _commit(self, sm: ShortMessage, text: str) -> None:
        reply = IncomingReply(
            self._carrier, sm.source_addr, sm.destination_addr or None, text, datetime.now(UTC)
        )
        await self._require_sink().incoming(reply)
        self.replies += 1

    def _require_sink(self) -> DeliverySink:
        if self._sink is None:
            raise RuntimeError("the carrier was not started")
        return self._sink
