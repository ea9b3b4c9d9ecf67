"""Delivery receipts: which submitted message a deliver_sm reports on, and its outcome.

SMSCs give the receipt in the text (SMPP 3.4 appendix B: ``id:... sub:... dlvrd:...
submit date:... done date:... stat:DELIVRD err:000 text:...``), in the
``receipted_message_id`` (0x001E) and ``message_state`` (0x0427) TLVs, or both. The TLVs win
when present: they carry the id in the very form submit_sm_resp gave it. An id is kept
exactly as written (hex or decimal, leading zeros and case kept): it is matched as is
against the reference stored at submit time.

Some SMSCs answer submit_sm with an id in one base and write the receipt's id in another
(hex in the answer, decimal in the text). For those the operator names both bases
(``id_bases``, like Kannel's msg-id-type): both ids are then stored and matched as the
decimal number they denote, so "0A1F" answered and "2591" receipted are the same message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from smsgate.carriers.smpp.pdu import ShortMessage, Tag, tlv_int, tlv_text
from smsgate.core.states import MessageState

RECEIPT_ESM = 0x04  # esm_class message type: SMSC delivery receipt
INTERMEDIATE_ESM = 0x20  # esm_class message type: intermediate delivery notification
ESM_TYPE_MASK = 0x3C

_FIELD = {key: re.compile(rf"(?:^|\s){key}:(\S*)", re.IGNORECASE) for key in ("id", "stat", "err")}

# The text forms of ``stat`` and what each means for the message (None: not final yet).
TEXT_STATES: dict[str, MessageState | None] = {
    "DELIVRD": MessageState.DELIVERED,
    "UNDELIV": MessageState.UNDELIVERED,
    "EXPIRED": MessageState.UNDELIVERED,
    "DELETED": MessageState.UNDELIVERED,
    "REJECTD": MessageState.UNDELIVERED,
    "UNKNOWN": MessageState.UNDELIVERED,
    "ENROUTE": None,
    "ACCEPTD": None,
}
# message_state TLV values (SMPP 3.4 section 5.2.28) as their text names.
TLV_STATES = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}


@dataclass(frozen=True, slots=True)
class Receipt:
    message_id: str
    stat: str  # the text form: DELIVRD, UNDELIV, ...
    err: str | None

    @property
    def state(self) -> MessageState | None:
        """The message's final state, or None when the receipt is not final."""
        return TEXT_STATES.get(self.stat.upper(), MessageState.UNDELIVERED)

    @property
    def error(self) -> str | None:
        if self.state is MessageState.DELIVERED:
            return None
        return f"stat:{self.stat}" + (f" err:{self.err}" if self.err else "")


def is_receipt(sm: ShortMessage) -> bool:
    """Whether a deliver_sm reports on a submitted message (else it is a user's reply)."""
    kind = sm.esm_class & ESM_TYPE_MASK
    return kind in (RECEIPT_ESM, INTERMEDIATE_ESM) or sm.tlv(Tag.RECEIPTED_MESSAGE_ID) is not None


def parse(sm: ShortMessage) -> Receipt | None:
    """The receipt a deliver_sm carries, or None when it names no message id."""
    text = sm.short_message.decode("latin-1")
    tlv_id = tlv_text(sm.tlv(Tag.RECEIPTED_MESSAGE_ID))
    tlv_state = tlv_int(sm.tlv(Tag.MESSAGE_STATE))
    message_id = tlv_id or _field(text, "id")
    if not message_id:
        return None
    stat = TLV_STATES.get(tlv_state, "UNKNOWN") if tlv_state is not None else _field(text, "stat")
    if not stat:
        return None
    err = _field(text, "err")
    if err is None:
        network = sm.tlv(Tag.NETWORK_ERROR_CODE)
        err = network.hex() if network else None
    return Receipt(message_id, stat, err)


# id_bases option: "<submit_sm_resp base>/<receipt base>", or "as-is" (exact text).
ID_BASES = ("as-is", "dec/dec", "hex/dec", "dec/hex", "hex/hex")
_BASE = {"dec": 10, "hex": 16}


def submitted_id(message_id: str, id_bases: str) -> str:
    """The reference to store for an id submit_sm_resp gave."""
    return _as_number(message_id, id_bases, 0)


def receipted_id(message_id: str, id_bases: str) -> str:
    """The reference a receipt's id names, in the form :func:`submitted_id` stored."""
    return _as_number(message_id, id_bases, 1)


def _as_number(message_id: str, id_bases: str, side: int) -> str:
    if id_bases == "as-is":
        return message_id
    base = _BASE[id_bases.split("/")[side]]
    try:
        return str(int(message_id, base))
    except ValueError:
        return message_id  # not a number in that base: matched as written


def _field(text: str, key: str) -> str | None:
    found = _FIELD[key].search(text)
    return found.group(1) if found and found.group(1) else None
