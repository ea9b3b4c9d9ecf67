"""Short-message text on the wire: which alphabet, how a long text is split, and how
concatenated parts are put back together.

SMPP and CMPP share this: GSM 03.38 (7-bit, sent unpacked one septet per octet) when
every character is in its tables, otherwise UCS-2 (UTF-16BE, so a character outside
the BMP is a surrogate pair). A single message holds 160 septets or 70 UCS-2 units; a
part of a long one gives 6 octets to the concatenation header (``05 00 03 ref total
seq``) and holds 153 septets or 67 units. A part never ends inside a surrogate pair
or between an escape and the character it escapes.

For UCS-2 the split agrees with billing (:mod:`smsgate.core.units`): the same 70/67
measure, so a message is sent in as many parts as it was billed units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

# GSM 03.38 basic table, by septet value; "\x1b" is the escape to the extension table.
_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_EXTENSION = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}
_ESCAPE = 0x1B
_TO_SEPTET = {ch: i for i, ch in enumerate(_BASIC) if i != _ESCAPE}
_FROM_SEPTET = {i: ch for ch, i in _TO_SEPTET.items()}
_FROM_EXTENSION = {i: ch for ch, i in _EXTENSION.items()}

SINGLE = {0: 160, 8: 70}  # capacity of one message, in septets or UCS-2 units
PART = {0: 153, 8: 67}  # capacity of one part of a concatenated message
CONCAT_IEI_8BIT = 0x00
CONCAT_IEI_16BIT = 0x08


class Coding(IntEnum):
    """The alphabet, valued as SMPP's data_coding (and CMPP's Msg_Fmt) write it."""

    GSM7 = 0
    UCS2 = 8


@dataclass(frozen=True, slots=True)
class Concat:
    """Where a part sits in a concatenated message."""

    ref: int
    total: int
    seq: int  # 1-based


@dataclass(frozen=True, slots=True)
class Encoded:
    coding: Coding
    parts: tuple[bytes, ...]  # each with its concatenation header when there are several
    udhi: bool  # whether the parts carry a user data header


def coding_for(text: str) -> Coding:
    """GSM-7 when every character is in the GSM 03.38 tables, else UCS-2."""
    if all(ch in _TO_SEPTET or ch in _EXTENSION for ch in text):
        return Coding.GSM7
    return Coding.UCS2


def split(text: str, coding: Coding | None = None) -> list[str]:
    """The text of each part: one when it fits a single message, else 153/67-sized parts."""
    coding = coding_for(text) if coding is None else coding
    units = [_width(ch, coding) for ch in text]
    if sum(units) <= SINGLE[coding]:
        return [text]
    parts: list[str] = []
    start, used = 0, 0
    for i, width in enumerate(units):
        if used + width > PART[coding]:
            parts.append(text[start:i])
            start, used = i, 0
        used += width
    parts.append(text[start:])
    return parts


def encode_text(text: str, coding: Coding) -> bytes:
    """GSM-7 unpacked (one septet per octet, escapes as 0x1B x) or UTF-16BE."""
    if coding is Coding.UCS2:
        return text.encode("utf-16-be")
    out = bytearray()
    for ch in text:
        if ch in _TO_SEPTET:
            out.append(_TO_SEPTET[ch])
        elif ch in _EXTENSION:
            out += bytes((_ESCAPE, _EXTENSION[ch]))
        else:
            raise ValueError(f"U+{ord(ch):04X} has no GSM 03.38 septet")
    return bytes(out)


def decode_text(body: bytes, data_coding: int) -> str:
    """Text from a message body: 0 GSM-7 unpacked, 8 UCS-2, 15 GBK, anything else latin-1.

    Undecodable input is replaced, never raised: a reply is kept even when it is garbled.
    """
    if data_coding == Coding.GSM7:
        return _decode_gsm7(body)
    if data_coding == Coding.UCS2:
        return body.decode("utf-16-be", errors="replace")
    if data_coding == 15:
        return body.decode("gbk", errors="replace")
    return body.decode("latin-1")


def concat_udh(ref: int, total: int, seq: int) -> bytes:
    """The 8-bit-reference concatenation header: ``05 00 03 ref total seq``."""
    if not (0 <= ref <= 255 and 1 <= seq <= total <= 255):
        raise ValueError(f"bad concatenation ref={ref} total={total} seq={seq}")
    return bytes((5, CONCAT_IEI_8BIT, 3, ref, total, seq))


def encode_parts(text: str, ref: int) -> Encoded:
    """The text ready to send: its alphabet and each part's bytes (header included)."""
    coding = coding_for(text)
    pieces = split(text, coding)
    if len(pieces) == 1:
        return Encoded(coding, (encode_text(text, coding),), udhi=False)
    total = len(pieces)
    parts = tuple(
        concat_udh(ref & 0xFF, total, seq) + encode_text(piece, coding)
        for seq, piece in enumerate(pieces, start=1)
    )
    return Encoded(coding, parts, udhi=True)


def parse_udh(payload: bytes) -> tuple[Concat | None, bytes]:
    """Strip the user data header; the concatenation it names, if any (8- or 16-bit ref).

    A header that runs past the payload is malformed: the payload is returned as-is.
    """
    if not payload:
        return None, payload
    length = payload[0]
    if length + 1 > len(payload):
        return None, payload
    header, body = payload[1 : length + 1], payload[length + 1 :]
    concat = None
    i = 0
    while i + 2 <= len(header):
        iei, size = header[i], header[i + 1]
        data = header[i + 2 : i + 2 + size]
        if iei == CONCAT_IEI_8BIT and size == 3 and len(data) == 3:
            concat = _concat(data[0], data[1], data[2])
        elif iei == CONCAT_IEI_16BIT and size == 4 and len(data) == 4:
            concat = _concat((data[0] << 8) | data[1], data[2], data[3])
        i += 2 + size
    return concat, body


@dataclass(slots=True)
class _Group:
    total: int
    started: float
    texts: dict[int, str] = field(default_factory=dict)


class Reassembler:
    """Puts concatenated parts back together, in any order, ignoring repeats.

    Keyed by the caller (e.g. sender + destination): the part's own reference and total
    are added to the key, so two long messages from one sender do not mix. Groups that
    stay incomplete for ``timeout`` seconds come out of :meth:`expired` with what arrived.
    """

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._groups: dict[tuple[str, int, int], _Group] = {}

    def add(self, key: str, concat: Concat | None, text: str, now: float) -> str | None:
        """The whole text once every part is in (at once for a single message), else None."""
        if concat is None or concat.total <= 1:
            return text
        group_key = (key, concat.ref, concat.total)
        group = self._groups.setdefault(group_key, _Group(concat.total, now))
        group.texts.setdefault(concat.seq, text)
        if len(group.texts) < group.total:
            return None
        del self._groups[group_key]
        return "".join(group.texts[seq] for seq in sorted(group.texts))

    def expired(self, now: float) -> list[tuple[str, str]]:
        """(key, text of the parts that arrived) for every group older than the timeout."""
        old = [k for k, g in self._groups.items() if now - g.started >= self._timeout]
        out = []
        for group_key in old:
            group = self._groups.pop(group_key)
            out.append((group_key[0], "".join(group.texts[s] for s in sorted(group.texts))))
        return out

    def __len__(self) -> int:
        return len(self._groups)


def _width(ch: str, coding: Coding) -> int:
    if coding is Coding.UCS2:
        return 2 if ord(ch) > 0xFFFF else 1
    return 2 if ch in _EXTENSION else 1


def _concat(ref: int, total: int, seq: int) -> Concat | None:
    if total == 0 or seq == 0 or seq > total:
        return None  # the specification says to ignore such a header
    return Concat(ref, total, seq)


def _decode_gsm7(body: bytes) -> str:
    out: list[str] = []
    escaped = False
    for septet in body:
        if escaped:
            out.append(_FROM_EXTENSION.get(septet, _FROM_SEPTET.get(septet, "?")))
            escaped = False
        elif septet == _ESCAPE:
            escaped = True
        else:
            out.append(_FROM_SEPTET.get(septet & 0x7F, "?"))
    return "".join(out)
