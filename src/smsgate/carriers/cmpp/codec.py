"""CMPP 2.0 and 3.0 PDUs as bytes and back (China Mobile Peer to Peer, the ISMG protocol).

Every PDU is a 12-byte header (Total_Length, Command_Id, Sequence_Id; big-endian
unsigned 32-bit) and a body. The two versions differ only in field widths: 3.0 widens
the terminal ids to 32 bytes, adds terminal types and LinkID, and makes the status and
result fields 4 bytes instead of 1 (see ``_widths``). Octet strings are ASCII, left
aligned and padded with zero bytes. Nothing here reads a clock or a socket.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from smsgate.core import cmpp as cmpp_rules

HEADER = struct.Struct("!III")
HEADER_SIZE = HEADER.size
MAX_PDU = 4096  # far above the largest legal PDU (a SUBMIT to 100 numbers in 3.0: ~3.5 kB)


class Command(IntEnum):
    CONNECT = 0x00000001
    CONNECT_RESP = 0x80000001
    TERMINATE = 0x00000002
    TERMINATE_RESP = 0x80000002
    SUBMIT = 0x00000004
    SUBMIT_RESP = 0x80000004
    DELIVER = 0x00000005
    DELIVER_RESP = 0x80000005
    ACTIVE_TEST = 0x00000008
    ACTIVE_TEST_RESP = 0x80000008


class Version(IntEnum):
    V2 = 0x20
    V3 = 0x30


def version_of(byte: int) -> Version:
    """The dialect a CONNECT's Version byte asks for (0x21 and the like are 2.x)."""
    return Version.V3 if byte >= Version.V3 else Version.V2


class CodecError(ValueError):
    """A PDU that cannot be read: wrong length, truncated body, bad field."""


@dataclass(frozen=True, slots=True)
class Widths:
    status: int  # CONNECT_RESP Status, SUBMIT_RESP and DELIVER_RESP Result
    terminal: int  # Fee_terminal_Id, Dest_terminal_Id, Src_terminal_Id
    terminal_type: bool  # the *_terminal_type bytes after terminal ids
    tail: int  # Reserve (2.0) or LinkID (3.0) after the content


_WIDTHS = {
    Version.V2: Widths(status=1, terminal=21, terminal_type=False, tail=8),
    Version.V3: Widths(status=4, terminal=32, terminal_type=True, tail=20),
}


def _widths(version: Version) -> Widths:
    return _WIDTHS[version]


# -- header ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Header:
    length: int
    command: int
    sequence: int


def frame(command: Command, sequence: int, body: bytes = b"") -> bytes:
    return HEADER.pack(HEADER_SIZE + len(body), command, sequence) + body


def parse_header(data: bytes) -> Header:
    if len(data) != HEADER_SIZE:
        raise CodecError(f"a header is {HEADER_SIZE} bytes, got {len(data)}")
    length, command, sequence = HEADER.unpack(data)
    if not HEADER_SIZE <= length <= MAX_PDU:
        raise CodecError(f"Total_Length {length} out of range")
    return Header(length, command, sequence)


# -- field helpers ---------------------------------------------------------------------------


def octets(text: str, width: int) -> bytes:
    raw = text.encode("ascii")
    if len(raw) > width:
        raise CodecError(f"{text!r} is longer than {width} bytes")
    return raw.ljust(width, b"\0")


def _uint(value: int, width: int) -> bytes:
    return value.to_bytes(width, "big")


class Reader:
    """Reads a body field by field; running past the end is a CodecError."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self._at + n > len(self._data):
            raise CodecError("body shorter than its fields")
        chunk = self._data[self._at : self._at + n]
        self._at += n
        return chunk

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def text(self, n: int) -> str:
        return self.take(n).split(b"\0", 1)[0].decode("latin-1")


# -- CONNECT ---------------------------------------------------------------------------------


authenticator_source = cmpp_rules.authenticator_source


def authenticator_ismg(status: int, source: bytes, secret: str, version: Version) -> bytes:
    """MD5(Status + AuthenticatorSource + shared secret); Status as wide as on the wire."""
    return cmpp_rules.authenticator_ismg(status, _widths(version).status, source, secret)


@dataclass(frozen=True, slots=True)
class Connect:
    source_addr: str
    authenticator: bytes
    version: int
    timestamp: int  # MMDDHHMMSS as a number


def encode_connect(c: Connect) -> bytes:
    return octets(c.source_addr, 6) + c.authenticator + bytes([c.version]) + _uint(c.timestamp, 4)


def decode_connect(body: bytes) -> Connect:
    r = Reader(body)
    return Connect(r.text(6), r.take(16), r.uint(1), r.uint(4))


@dataclass(frozen=True, slots=True)
class ConnectResp:
    status: int
    authenticator: bytes
    version: int


def encode_connect_resp(c: ConnectResp, version: Version) -> bytes:
    auth = c.authenticator.ljust(16, b"\0")
    return _uint(c.status, _widths(version).status) + auth + bytes([c.version])


def decode_connect_resp(body: bytes, version: Version) -> ConnectResp:
    r = Reader(body)
    return ConnectResp(r.uint(_widths(version).status), r.take(16), r.uint(1))


# -- SUBMIT ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Submit:
    msg_src: str  # the SP's code (Source_Addr of its CONNECT)
    src_id: str  # the sender number shown to the user
    dest_terminal_ids: tuple[str, ...]
    msg_content: bytes
    msg_fmt: int = 8
    tp_udhi: int = 0
    tp_pid: int = 0
    pk_total: int = 1
    pk_number: int = 1
    registered_delivery: int = 1
    msg_level: int = 0
    service_id: str = ""
    fee_user_type: int = 0
    fee_terminal_id: str = ""
    fee_terminal_type: int = 0
    fee_type: str = "01"
    fee_code: str = "000000"
    valid_time: str = ""
    at_time: str = ""
    dest_terminal_type: int = 0
    link_id: str = ""
    msg_id: bytes = b"\0" * 8


def encode_submit(s: Submit, version: Version) -> bytes:
    w = _widths(version)
    if not 1 <= len(s.dest_terminal_ids) <= 100:
        raise CodecError("a SUBMIT has 1 to 100 destination numbers")
    if len(s.msg_content) > 255:
        raise CodecError("Msg_Content over 255 bytes")
    fee_type_byte = bytes([s.fee_terminal_type]) if w.terminal_type else b""
    parts = [
        s.msg_id,
        bytes([s.pk_total, s.pk_number, s.registered_delivery, s.msg_level]),
        octets(s.service_id, 10),
        bytes([s.fee_user_type]),
        octets(s.fee_terminal_id, w.terminal),
        fee_type_byte,
        bytes([s.tp_pid, s.tp_udhi, s.msg_fmt]),
        octets(s.msg_src, 6),
        octets(s.fee_type, 2),
        octets(s.fee_code, 6),
        octets(s.valid_time, 17),
        octets(s.at_time, 17),
        octets(s.src_id, 21),
        bytes([len(s.dest_terminal_ids)]),
        b"".join(octets(d, w.terminal) for d in s.dest_terminal_ids),
        bytes([s.dest_terminal_type]) if w.terminal_type else b"",
        bytes([len(s.msg_content)]),
        s.msg_content,
        octets(s.link_id, w.tail) if w.terminal_type else b"\0" * w.tail,
    ]
    return b"".join(parts)


def decode_submit(body: bytes, version: Version) -> Submit:
    w = _widths(version)
    r = Reader(body)
    msg_id = r.take(8)
    pk_total, pk_number, registered, level = r.take(4)
    service_id = r.text(10)
    fee_user_type = r.uint(1)
    fee_terminal_id = r.text(w.terminal)
    fee_terminal_type = r.uint(1) if w.terminal_type else 0
    tp_pid, tp_udhi, msg_fmt = r.take(3)
    msg_src, fee_type, fee_code = r.text(6), r.text(2), r.text(6)
    valid_time, at_time, src_id = r.text(17), r.text(17), r.text(21)
    dests = tuple(r.text(w.terminal) for _ in range(r.uint(1)))
    dest_terminal_type = r.uint(1) if w.terminal_type else 0
    content = r.take(r.uint(1))
    link_id = r.text(w.tail) if w.terminal_type else ""
    return Submit(
        msg_src=msg_src,
        src_id=src_id,
        dest_terminal_ids=dests,
        msg_content=content,
        msg_fmt=msg_fmt,
        tp_udhi=tp_udhi,
        tp_pid=tp_pid,
        pk_total=pk_total,
        pk_number=pk_number,
        registered_delivery=registered,
        msg_level=level,
        service_id=service_id,
        fee_user_type=fee_user_type,
        fee_terminal_id=fee_terminal_id,
        fee_terminal_type=fee_terminal_type,
        fee_type=fee_type,
        fee_code=fee_code,
        valid_time=valid_time,
        at_time=at_time,
        dest_terminal_type=dest_terminal_type,
        link_id=link_id,
        msg_id=msg_id,
    )


@dataclass(frozen=True, slots=True)
class Resp:
    """SUBMIT_RESP and DELIVER_RESP: the Msg_Id and a Result."""

    msg_id: bytes
    result: int


def encode_resp(r: Resp, version: Version) -> bytes:
    return r.msg_id + _uint(r.result, _widths(version).status)


def decode_resp(body: bytes, version: Version) -> Resp:
    r = Reader(body)
    return Resp(r.take(8), r.uint(_widths(version).status))


# -- DELIVER ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Deliver:
    msg_id: bytes
    dest_id: str  # the SP's number the user wrote to (MO) or the sender number (report)
    src_terminal_id: str  # the user's number
    msg_content: bytes  # the text, or an encoded StatusReport
    registered_delivery: int = 0  # 1: a status report
    msg_fmt: int = 8
    tp_udhi: int = 0
    tp_pid: int = 0
    service_id: str = ""
    src_terminal_type: int = 0
    link_id: str = ""


def encode_deliver(d: Deliver, version: Version) -> bytes:
    w = _widths(version)
    if len(d.msg_content) > 255:
        raise CodecError("Msg_Content over 255 bytes")
    return b"".join(
        [
            d.msg_id,
            octets(d.dest_id, 21),
            octets(d.service_id, 10),
            bytes([d.tp_pid, d.tp_udhi, d.msg_fmt]),
            octets(d.src_terminal_id, w.terminal),
            bytes([d.src_terminal_type]) if w.terminal_type else b"",
            bytes([d.registered_delivery, len(d.msg_content)]),
            d.msg_content,
            octets(d.link_id, w.tail) if w.terminal_type else b"\0" * w.tail,
        ]
    )


def decode_deliver(body: bytes, version: Version) -> Deliver:
    w = _widths(version)
    r = Reader(body)
    msg_id, dest_id, service_id = r.take(8), r.text(21), r.text(10)
    tp_pid, tp_udhi, msg_fmt = r.take(3)
    src = r.text(w.terminal)
    src_type = r.uint(1) if w.terminal_type else 0
    registered = r.uint(1)
    content = r.take(r.uint(1))
    link_id = r.text(w.tail) if w.terminal_type else ""
    return Deliver(
        msg_id, dest_id, src, content, registered, msg_fmt, tp_udhi, tp_pid, service_id,
        src_type, link_id,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class StatusReport:
    """The Msg_Content of a DELIVER with Registered_Delivery = 1."""

    msg_id: bytes  # the Msg_Id the SUBMIT_RESP gave
    stat: str  # DELIVRD, EXPIRED, DELETED, UNDELIV, ACCEPTD, UNKNOWN, REJECTD, or a code
    submit_time: str  # YYMMDDHHMM
    done_time: str  # YYMMDDHHMM
    dest_terminal_id: str
    smsc_sequence: int = 0


def encode_report(s: StatusReport, version: Version) -> bytes:
    w = _widths(version)
    return b"".join(
        [
            s.msg_id,
            octets(s.stat, 7),
            octets(s.submit_time, 10),
            octets(s.done_time, 10),
            octets(s.dest_terminal_id, w.terminal),
            _uint(s.smsc_sequence, 4),
        ]
    )


def decode_report(content: bytes, version: Version) -> StatusReport:
    w = _widths(version)
    r = Reader(content)
    return StatusReport(r.take(8), r.text(7), r.text(10), r.text(10), r.text(w.terminal), r.uint(4))


# -- Msg_Id ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MsgIdParts:
    month: int
    day: int
    hour: int
    minute: int
    second: int
    gateway: int  # 22 bits: the ISMG's code
    sequence: int  # 16 bits


_MSG_ID_BITS = cmpp_rules.MSG_ID_BITS


def make_msg_id(
    month: int, day: int, hour: int, minute: int, second: int, gateway: int, sequence: int
) -> bytes:
    value = 0
    for part, bits in zip(
        (month, day, hour, minute, second, gateway, sequence), _MSG_ID_BITS, strict=True
    ):
        value = (value << bits) | (part & ((1 << bits) - 1))
    return value.to_bytes(8, "big")


def split_msg_id(msg_id: bytes) -> MsgIdParts:
    value = int.from_bytes(msg_id, "big")
    parts: list[int] = []
    for bits in reversed(_MSG_ID_BITS):
        parts.append(value & ((1 << bits) - 1))
        value >>= bits
    m, d, h, mi, s, g, q = reversed(parts)
    return MsgIdParts(m, d, h, mi, s, g, q)


def msg_id_text(msg_id: bytes) -> str:
    """The one form a Msg_Id is stored and shown in: its 8 bytes as 16 lowercase hex digits
    (fixed width, byte for byte what was received, so it round-trips exactly)."""
    if len(msg_id) != 8:
        raise CodecError("a Msg_Id is 8 bytes")
    return msg_id.hex()


def msg_id_bytes(text: str) -> bytes:
    raw = bytes.fromhex(text)
    if len(raw) != 8:
        raise CodecError("a Msg_Id is 16 hex digits")
    return raw
