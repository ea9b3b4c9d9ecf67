"""SMPP 3.4 protocol data units: the header, the bodies smsgate sends and reads, framing.

Every PDU is a 16-octet header (command_length, command_id, command_status,
sequence_number, all big-endian) and a body of C-octet strings (NUL-terminated),
integers and, at the end, optional parameters (TLVs: tag, length, value). Only what an
ESME needs is spelled out: bind, submit_sm, deliver_sm and their answers; every other
PDU travels as its header and raw body.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

HEADER = struct.Struct(">IIII")
TLV_HEADER = struct.Struct(">HH")
MAX_PDU = 64 * 1024  # far above any real PDU: a longer length field means a broken stream
INTERFACE_VERSION = 0x34
RESPONSE_BIT = 0x80000000
MAX_SEQUENCE = 0x7FFFFFFF


class Cmd(IntEnum):
    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_RECEIVER_RESP = 0x80000001
    BIND_TRANSMITTER = 0x00000002
    BIND_TRANSMITTER_RESP = 0x80000002
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015


class Status(IntEnum):
    """The command_status values smsgate names (SMPP 3.4 section 5.1.3)."""

    OK = 0x00
    RINVMSGLEN = 0x01
    RINVCMDLEN = 0x02
    RINVCMDID = 0x03
    RINVBNDSTS = 0x04
    RALYBND = 0x05
    RSYSERR = 0x08
    RINVSRCADR = 0x0A
    RINVDSTADR = 0x0B
    RBINDFAIL = 0x0D
    RINVPASWD = 0x0E
    RINVSYSID = 0x0F
    RMSGQFUL = 0x14
    RTHROTTLED = 0x58
    RX_T_APPN = 0x64  # temporary application error: the SMSC retries the deliver_sm


class Tag(IntEnum):
    """Optional parameter tags smsgate reads or writes."""

    RECEIPTED_MESSAGE_ID = 0x001E
    SAR_MSG_REF_NUM = 0x020C
    SAR_TOTAL_SEGMENTS = 0x020E
    SAR_SEGMENT_SEQNUM = 0x020F
    MESSAGE_PAYLOAD = 0x0424
    MESSAGE_STATE = 0x0427
    NETWORK_ERROR_CODE = 0x0423


class PduError(ValueError):
    """Bytes that are not a well-formed PDU."""


@dataclass(frozen=True, slots=True)
class Pdu:
    command_id: int
    status: int
    sequence: int
    body: bytes = b""

    @property
    def is_response(self) -> bool:
        return bool(self.command_id & RESPONSE_BIT)

    def encode(self) -> bytes:
        return HEADER.pack(16 + len(self.body), self.command_id, self.status, self.sequence) + (
            self.body
        )


@dataclass(frozen=True, slots=True)
class Bind:
    system_id: str
    password: str
    system_type: str = ""
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""

    def encode(self) -> bytes:
        return (
            cstring(self.system_id)
            + cstring(self.password)
            + cstring(self.system_type)
            + bytes((INTERFACE_VERSION, self.addr_ton, self.addr_npi))
            + cstring(self.address_range)
        )


@dataclass(frozen=True, slots=True)
class ShortMessage:
    """The body shared by submit_sm and deliver_sm (SMPP 3.4 sections 4.4.1 and 4.6.1)."""

    source_addr: str = ""
    destination_addr: str = ""
    short_message: bytes = b""
    service_type: str = ""
    source_ton: int = 0
    source_npi: int = 0
    dest_ton: int = 0
    dest_npi: int = 0
    esm_class: int = 0
    protocol_id: int = 0
    priority: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    tlvs: tuple[tuple[int, bytes], ...] = field(default=())

    def encode(self) -> bytes:
        if len(self.short_message) > 254:
            raise PduError("short_message holds at most 254 octets; use message_payload")
        head = (
            cstring(self.service_type)
            + bytes((self.source_ton, self.source_npi))
            + cstring(self.source_addr)
            + bytes((self.dest_ton, self.dest_npi))
            + cstring(self.destination_addr)
            + bytes((self.esm_class, self.protocol_id, self.priority))
            + cstring(self.schedule_delivery_time)
            + cstring(self.validity_period)
            + bytes(
                (
                    self.registered_delivery,
                    self.replace_if_present,
                    self.data_coding,
                    self.sm_default_msg_id,
                    len(self.short_message),
                )
            )
        )
        return head + self.short_message + encode_tlvs(self.tlvs)

    @classmethod
    def decode(cls, body: bytes) -> ShortMessage:
        r = _Reader(body)
        service_type = r.cstring()
        source_ton, source_npi = r.octet(), r.octet()
        source_addr = r.cstring()
        dest_ton, dest_npi = r.octet(), r.octet()
        destination_addr = r.cstring()
        esm_class, protocol_id, priority = r.octet(), r.octet(), r.octet()
        schedule, validity = r.cstring(), r.cstring()
        registered, replace, coding, default_id = r.octet(), r.octet(), r.octet(), r.octet()
        message = r.take(r.octet())
        return cls(
            source_addr=source_addr,
            destination_addr=destination_addr,
            short_message=message,
            service_type=service_type,
            source_ton=source_ton,
            source_npi=source_npi,
            dest_ton=dest_ton,
            dest_npi=dest_npi,
            esm_class=esm_class,
            protocol_id=protocol_id,
            priority=priority,
            schedule_delivery_time=schedule,
            validity_period=validity,
            registered_delivery=registered,
            replace_if_present=replace,
            data_coding=coding,
            sm_default_msg_id=default_id,
            tlvs=decode_tlvs(r.rest()),
        )

    def tlv(self, tag: int) -> bytes | None:
        """The first value of ``tag``, or None."""
        return next((value for t, value in self.tlvs if t == tag), None)


def cstring(text: str) -> bytes:
    """A C-octet string: ASCII (latin-1 for anything else an SMSC may use) and a NUL."""
    raw = text.encode("latin-1")
    if b"\0" in raw:
        raise PduError(f"{text!r} holds a NUL")
    return raw + b"\0"


def encode_tlvs(tlvs: tuple[tuple[int, bytes], ...]) -> bytes:
    return b"".join(TLV_HEADER.pack(tag, len(value)) + value for tag, value in tlvs)


def decode_tlvs(data: bytes) -> tuple[tuple[int, bytes], ...]:
    out: list[tuple[int, bytes]] = []
    i = 0
    while i < len(data):
        if i + 4 > len(data):
            raise PduError(f"truncated TLV header at octet {i}")
        tag, length = TLV_HEADER.unpack_from(data, i)
        value = data[i + 4 : i + 4 + length]
        if len(value) != length:
            raise PduError(f"TLV 0x{tag:04X} runs past the PDU")
        out.append((tag, value))
        i += 4 + length
    return tuple(out)


def tlv_text(value: bytes | None) -> str | None:
    """A C-octet-string TLV value as text (the NUL, if sent, dropped)."""
    if value is None:
        return None
    return value.split(b"\0", 1)[0].decode("latin-1")


def tlv_int(value: bytes | None) -> int | None:
    return None if not value else int.from_bytes(value, "big")


def message_id_of(body: bytes) -> str:
    """The message_id of a submit_sm_resp (an error answer may have no body at all)."""
    if not body:
        return ""
    return _Reader(body).cstring()


def bind_resp_system_id(body: bytes) -> str:
    return _Reader(body).cstring() if body else ""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def octet(self) -> int:
        if self._at >= len(self._data):
            raise PduError("body ends early")
        value = self._data[self._at]
        self._at += 1
        return value

    def cstring(self) -> str:
        end = self._data.find(b"\0", self._at)
        if end < 0:
            raise PduError("C-octet string without its NUL")
        text = self._data[self._at : end].decode("latin-1")
        self._at = end + 1
        return text

    def take(self, n: int) -> bytes:
        if self._at + n > len(self._data):
            raise PduError("body ends early")
        chunk = self._data[self._at : self._at + n]
        self._at += n
        return chunk

    def rest(self) -> bytes:
        chunk = self._data[self._at :]
        self._at = len(self._data)
        return chunk


class Framer:
    """Cuts a byte stream into PDUs: feed what the socket gave, take the whole PDUs."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Pdu]:
        self._buffer += data
        out: list[Pdu] = []
        while len(self._buffer) >= 16:
            length, command_id, status, sequence = HEADER.unpack_from(self._buffer)
            if length < 16 or length > MAX_PDU:
                raise PduError(f"command_length {length} is out of range")
            if len(self._buffer) < length:
                break
            out.append(Pdu(command_id, status, sequence, bytes(self._buffer[16:length])))
            del self._buffer[:length]
        return out


class Sequences:
    """sequence_number: 1 to 0x7FFFFFFF, then 1 again (SMPP 3.4 section 3.2)."""

    def __init__(self, start: int = 1) -> None:
        self._next = start

    def next(self) -> int:
        value = self._next
        self._next = 1 if value >= MAX_SEQUENCE else value + 1
        return value
