"""Billing units and the 500-character limit."""

from __future__ import annotations

import pytest

from smsgate import errors
from smsgate.core.textnorm import ucs2_len
from smsgate.core.units import MAX_LENGTH, check_length, request_cost, units
from smsgate.errors import Rejected

EMOJI = "😀"  # outside the BMP: two UCS-2 code units


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        (0, 1),
        (1, 1),
        (70, 1),
        (71, 2),  # ceil(71 / 67)
        (134, 2),
        (135, 3),
        (201, 3),
        (202, 4),
        (500, 8),
    ],
)
def test_units_by_length(length: int, expected: int) -> None:
    assert units("字" * length) == expected


def test_signature_brackets_count() -> None:
    body = "好" * 66
    assert units("【短信宝】" + body) == 2  # 5 + 66 = 71 characters
    assert units("【短】" + body) == 1  # 3 + 66 = 69


def test_ascii_and_chinese_count_the_same() -> None:
    assert units("a" * 71) == units("中" * 71) == 2


def test_character_outside_bmp_counts_two() -> None:
    assert units("a" * 68 + EMOJI) == 1  # 70 code units
    assert units("a" * 69 + EMOJI) == 2  # 71 code units


def test_request_cost_multiplies_units_numbers_and_price() -> None:
    assert request_cost(units("x" * 71), 3, 2) == 2 * 3 * 2


def test_request_cost_zero_numbers_is_free() -> None:
    assert request_cost(units("hello"), 0, 1) == 0


@pytest.mark.parametrize(("n", "price"), [(-1, 1), (1, -1)])
def test_request_cost_rejects_negative_inputs(n: int, price: int) -> None:
    with pytest.raises(ValueError, match=">= 0"):
        request_cost(units("hello"), n, price)


def test_length_500_is_allowed() -> None:
    check_length("字" * MAX_LENGTH)


def test_length_501_is_rejected_with_the_count() -> None:
    with pytest.raises(Rejected) as info:
        check_length("字" * (MAX_LENGTH + 1))
    assert info.value.code is errors.CONTENT_TOO_LONG
    assert "501" in info.value.detail


def test_length_counts_non_bmp_as_two() -> None:
    check_length("a" * 498 + EMOJI)  # 500 code units
    with pytest.raises(Rejected):
        check_length("a" * 499 + EMOJI)  # 501 code units


@pytest.mark.parametrize(
    ("text", "length"),
    [("", 0), ("abc", 3), ("【短信宝】", 5), (EMOJI, 2), ("a" + EMOJI + "b", 4), ("𠀀", 2)],
)
def test_ucs2_len(text: str, length: int) -> None:
    assert ucs2_len(text) == length
