"""CMPP rules of core/cmpp.py: refusal -> Result, state -> Stat, Msg_Ids we hand out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from smsgate import errors
from smsgate.core import cmpp
from smsgate.core.states import MessageState


@pytest.mark.parametrize(
    ("code", "result"),
    [
        (errors.PARAMS_INCOMPLETE, 1),
        (errors.CONTENT_TOO_LONG, 6),
        (errors.BAD_PRODUCT, 7),
        (errors.FREQUENCY_LIMIT, 8),
        (errors.BAD_PHONE, 13),
        (errors.INSUFFICIENT_BALANCE, 41),
        (errors.ACCOUNT_INACTIVE, 42),
        (errors.SENSITIVE_WORD, 50),
        (errors.BAD_SIGNATURE, 52),
        (errors.TEMPLATE_REQUIRED, 54),
        (errors.OPTED_OUT, 57),
    ],
)
def test_result_for_each_refusal(code: errors.ErrorCode, result: int) -> None:
    assert cmpp.result_for(code) == result


def test_every_refusal_has_a_result_that_fits_one_byte() -> None:
    for code in errors.WIRE_CODES:
        if code is not errors.OK:
            assert 1 <= cmpp.result_for(code) <= 255


@pytest.mark.parametrize(
    ("state", "error", "stat"),
    [
        (MessageState.DELIVERED, None, "DELIVRD"),
        (MessageState.UNDELIVERED, None, "UNDELIV"),
        (MessageState.UNDELIVERED, "MK:0001", "MK:0001"),  # a carrier's own stat passes on
        (MessageState.UNDELIVERED, "a longer explanation", "UNDELIV"),
        (MessageState.EXPIRED, None, "EXPIRED"),
        (MessageState.FAILED, None, "REJECTD"),
    ],
)
def test_stat_for(state: MessageState, error: str | None, stat: str) -> None:
    assert cmpp.stat_for(state, error) == stat


def test_msg_ids_carry_time_gateway_and_a_wrapping_sequence() -> None:
    ids = cmpp.MsgIds(gateway=300250, start=0xFFFE)
    at = datetime(2026, 12, 4, 5, 30, 15, tzinfo=UTC)  # 13:30:15 in China
    first, second = ids.next(at), ids.next(at)
    value = int.from_bytes(first, "big")
    assert value >> 60 == 12
    assert (value >> 50) & 0x1F == 13  # the hour, China time
    assert (value >> 16) & 0x3FFFFF == 300250
    assert value & 0xFFFF == 0xFFFF
    assert int.from_bytes(second, "big") & 0xFFFF == 0  # wrapped


def test_authenticator_check() -> None:
    good = cmpp.authenticator_source("300250", "secret", 704123000)
    assert cmpp.authenticator_ok("300250", "secret", 704123000, good)
    assert not cmpp.authenticator_ok("300250", "other", 704123000, good)
    assert not cmpp.authenticator_ok("300250", "secret", 704123001, good)


def test_times() -> None:
    at = datetime(2026, 7, 4, 4, 30, 0, tzinfo=UTC)  # 12:30 in China
    assert cmpp.timestamp_of(at) == 704123000
    assert cmpp.report_time(at) == "2607041230"
    late = datetime(2026, 12, 31, 20, 0, 0, tzinfo=UTC)  # already the new year in China
    assert cmpp.report_time(late) == "2701010400"
