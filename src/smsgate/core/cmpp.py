"""CMPP rules that are not wire layout: login authenticators, what our refusals and
message states are called in CMPP, and the Msg_Ids the CMPP server hands out.

Pure: time is a parameter. The byte layout of PDUs is ``carriers/cmpp/codec.py``.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import IntEnum

from smsgate import errors
from smsgate.core.accounts import Account
from smsgate.core.states import MessageState

# CMPP's times (CONNECT Timestamp, report times, the time in a Msg_Id) are China's wall
# clock by convention: ISMGs and customers read them as Beijing time.
CHINA_TIME = timezone(timedelta(hours=8), "CST")


class ConnectStatus(IntEnum):
    """CMPP_CONNECT_RESP Status (0-4 are the protocol's; 5-7 ours, docs/cmpp.md)."""

    OK = 0
    BAD_STRUCTURE = 1
    BAD_SOURCE_ADDR = 2  # no account has this SP code
    AUTH_FAILED = 3
    VERSION_TOO_HIGH = 4
    ACCOUNT_INACTIVE = 5  # disabled or expired
    IP_NOT_ALLOWED = 6
    TOO_MANY_CONNECTIONS = 7


# SUBMIT_RESP Result: the protocol's own code where it has one for the refusal, else the
# SMSBao code's number (all above the protocol's 0-13, so they never collide).
_RESULTS: dict[str, int] = {
    errors.PARAMS_INCOMPLETE.wire: 1,  # 消息结构错
    errors.CONTENT_TOO_LONG.wire: 6,  # 超过最大信息长
    errors.BAD_PRODUCT.wire: 7,  # 业务代码错 (Service_Id names the product)
    errors.FREQUENCY_LIMIT.wire: 8,  # 流量控制错
    errors.BAD_PHONE.wire: 13,  # Dest_terminal_Id 错
}
RESULT_OK = 0
RESULT_BAD_STRUCTURE = 1
RESULT_BAD_MSG_SRC = 11  # Msg_src is not the SP code this connection logged in with
RESULT_BUSY = 8  # flow control: the window is full
RESULT_SYSTEM_ERROR = 9  # 2.0: 其他错误; not accepted, nothing charged (docs/cmpp.md)


def result_for(code: errors.ErrorCode) -> int:
    """The SUBMIT_RESP Result for a refusal of the send path (docs/cmpp.md)."""
    mapped = _RESULTS.get(code.wire)
    if mapped is not None:
        return mapped
    number = int(code.wire)
    return number if number > 13 else 1


def authenticator_source(source_addr: str, secret: str, timestamp: int) -> bytes:
    """MD5(Source_Addr + 9 zero bytes + shared secret + timestamp as MMDDHHMMSS)."""
    raw = source_addr.encode("ascii") + b"\0" * 9 + secret.encode() + f"{timestamp:010d}".encode()
    return hashlib.md5(raw).digest()


def authenticator_ismg(status: int, width: int, source: bytes, secret: str) -> bytes:
    """MD5(Status + AuthenticatorSource + shared secret); Status ``width`` bytes as sent."""
    return hashlib.md5(status.to_bytes(width, "big") + source + secret.encode()).digest()


def authenticator_ok(source_addr: str, secret: str, timestamp: int, authenticator: bytes) -> bool:
    expected = authenticator_source(source_addr, secret, timestamp)
    return hmac.compare_digest(expected, authenticator)


def timestamp_of(at: datetime) -> int:
    """A CONNECT Timestamp (MMDDHHMMSS, China time) as the number the PDU carries."""
    return int(at.astimezone(CHINA_TIME).strftime("%m%d%H%M%S"))


# Stat of a status report, by the message's final state.
_STATS = {
    MessageState.DELIVERED: "DELIVRD",
    MessageState.UNDELIVERED: "UNDELIV",
    MessageState.EXPIRED: "EXPIRED",
    MessageState.FAILED: "REJECTD",
}


def stat_for(state: MessageState, error: str | None) -> str:
    """The 7-character Stat: a carrier's own CMPP stat is passed on as it came."""
    if state is not MessageState.DELIVERED and error and len(error) == 7 and error.isascii():
        return error
    return _STATS.get(state, "UNKNOWN")


def report_time(at: datetime) -> str:
    """Submit_time / Done_time of a status report: YYMMDDHHMM, China time."""
    return at.astimezone(CHINA_TIME).strftime("%y%m%d%H%M")


@dataclass(frozen=True, slots=True)
class DueReport:
    """A status report owed to a CMPP customer, its message now final."""

    row_id: int
    msg_id: str  # as handed out, 16 hex digits
    phone: str
    state: MessageState
    error: str | None
    submitted_at: datetime
    done_at: datetime


@dataclass(frozen=True, slots=True)
class Login:
    status: ConnectStatus
    account: Account | None = None

    @property
    def secret(self) -> str:
        """The shared secret the AuthenticatorISMG is made with ('' when refused)."""
        if self.account is None or self.account.cmpp_secret is None:
            return ""
        return self.account.cmpp_secret


@dataclass(frozen=True, slots=True)
class DueReply:
    """A user reply owed to a CMPP customer as a DELIVER."""

    row_id: int
    phone: str  # the user: Src_terminal_Id
    dest: str | None  # what the user wrote to: Dest_Id
    content: str


MSG_ID_BITS = (4, 5, 5, 6, 6, 22, 16)  # month, day, hour, minute, second, gateway, sequence


class MsgIds:
    """Msg_Ids for the SUBMIT_RESPs of one server: the time, our gateway code, and a
    16-bit sequence that wraps (65536 ids a second before one repeats)."""

    def __init__(self, gateway: int, start: int = 0) -> None:
        self._gateway = gateway & 0x3FFFFF
        self._sequence = start & 0xFFFF

    def next(self, at: datetime) -> bytes:
        self._sequence = (self._sequence + 1) & 0xFFFF
        at = at.astimezone(CHINA_TIME)
        value = 0
        fields = (at.month, at.day, at.hour, at.minute, at.second, self._gateway, self._sequence)
        for part, bits in zip(fields, MSG_ID_BITS, strict=True):
            value = (value << bits) | (part & ((1 << bits) - 1))
        return value.to_bytes(8, "big")
