"""The anti-bombing frequency policy: windows, caps, digests, pruning."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from smsgate.core.frequency import (
    DAY,
    HOUR,
    MINUTE,
    FrequencyLimits,
    Sent,
    check_account_daily,
    check_number,
    content_digest,
    longest_window,
    prune,
)

NOW = 1_700_000_000.0
A = content_digest("【短信宝】您的验证码是1111")
B = content_digest("【短信宝】您的验证码是2222")
DEFAULT = FrequencyLimits()
# Only one rule at a time, to test it alone.
NO_RULES = FrequencyLimits(per_minute=None, per_hour=None, per_day=None, same_content_window=None)


def sends(*ages: float, digest: str = B) -> list[Sent]:
    """History with sends ``ages`` seconds before NOW."""
    return [Sent(NOW - age, digest) for age in ages]


def only(**kwargs: Any) -> FrequencyLimits:
    """Limits with every rule off but the ones given."""
    return dataclasses.replace(NO_RULES, **kwargs)


# --- defaults ----------------------------------------------------------------------------


def test_defaults() -> None:
    assert (DEFAULT.per_minute, DEFAULT.per_hour, DEFAULT.per_day) == (1, 5, 10)
    assert DEFAULT.same_content_window == 3600
    assert DEFAULT.daily_account_cap is None


def test_empty_history_is_allowed() -> None:
    assert check_number([], A, NOW, DEFAULT) is None


def test_no_rules_allows_anything() -> None:
    assert check_number(sends(0, 0, 0, digest=A), A, NOW, NO_RULES) is None


# --- same content ------------------------------------------------------------------------


def test_same_content_within_window_is_refused() -> None:
    history = sends(3599, digest=A)
    assert check_number(history, A, NOW, only(same_content_window=3600)) == (
        "same content within 3600s"
    )


def test_same_content_exactly_at_window_edge_is_allowed() -> None:
    assert check_number(sends(3600, digest=A), A, NOW, only(same_content_window=3600)) is None


def test_different_content_is_not_same_content() -> None:
    assert check_number(sends(1, digest=B), A, NOW, only(same_content_window=3600)) is None


@pytest.mark.parametrize("window", [None, 0])
def test_same_content_rule_off(window: float | None) -> None:
    assert check_number(sends(0, digest=A), A, NOW, only(same_content_window=window)) is None


def test_same_content_reason_shows_fractional_window() -> None:
    assert check_number(sends(1, digest=A), A, NOW, only(same_content_window=90.5)) == (
        "same content within 90.5s"
    )


def test_same_content_is_checked_before_caps() -> None:
    assert check_number(sends(1, digest=A), A, NOW, DEFAULT) == "same content within 3600s"


# --- per-number caps at window boundaries ------------------------------------------------


def test_per_minute_send_59s_ago_blocks() -> None:
    assert check_number(sends(59), A, NOW, only(per_minute=1)) == "per-minute cap 1"


def test_per_minute_send_exactly_60s_ago_is_outside_the_window() -> None:
    assert check_number(sends(MINUTE), A, NOW, only(per_minute=1)) is None


def test_per_minute_send_just_under_60s_ago_blocks() -> None:
    assert check_number(sends(59.999), A, NOW, only(per_minute=1)) == "per-minute cap 1"


def test_per_hour_cap_reached() -> None:
    history = sends(100, 200, 300, 400, HOUR - 1)
    assert check_number(history, A, NOW, only(per_hour=5)) == "per-hour cap 5"


def test_per_hour_below_cap_allowed() -> None:
    assert check_number(sends(100, 200, 300, 400), A, NOW, only(per_hour=5)) is None


def test_per_hour_oldest_exactly_an_hour_ago_drops_out() -> None:
    history = sends(100, 200, 300, 400, HOUR)
    assert check_number(history, A, NOW, only(per_hour=5)) is None


def test_per_day_cap_reached() -> None:
    history = sends(*(HOUR * i + 1 for i in range(9)), DAY - 1)
    assert check_number(history, A, NOW, only(per_day=10)) == "per-day cap 10"


def test_per_day_oldest_exactly_a_day_ago_drops_out() -> None:
    history = sends(*(HOUR * i + 1 for i in range(9)), DAY)
    assert check_number(history, A, NOW, only(per_day=10)) is None


def test_default_limits_hour_cap_after_minute_passes() -> None:
    history = sends(61, 120, 180, 240, 300)
    assert check_number(history, A, NOW, DEFAULT) == "per-hour cap 5"


def test_default_limits_day_cap() -> None:
    history = sends(*(HOUR * 2 * i + HOUR for i in range(10)))
    assert check_number(history, A, NOW, DEFAULT) == "per-day cap 10"


def test_default_limits_allow_a_fresh_send_after_a_minute() -> None:
    assert check_number(sends(60), A, NOW, DEFAULT) is None


@pytest.mark.parametrize("field", ["per_minute", "per_hour", "per_day"])
def test_zero_cap_means_no_sends(field: str) -> None:
    limits = only(**{field: 0})
    assert check_number([], A, NOW, limits) is not None


def test_zero_cap_reason() -> None:
    assert check_number([], A, NOW, only(per_minute=0)) == "per-minute cap 0"


def test_future_sends_count_as_inside() -> None:
    history = [Sent(NOW + 5, B)]  # another node's clock is ahead
    assert check_number(history, A, NOW, only(per_minute=1)) == "per-minute cap 1"


# --- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"per_minute": -1},
        {"per_hour": -1},
        {"per_day": -1},
        {"daily_account_cap": -1},
        {"same_content_window": -1.0},
    ],
)
def test_negative_limits_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=">= 0"):
        dataclasses.replace(DEFAULT, **kwargs)


# --- digest ------------------------------------------------------------------------------


def test_digest_is_64_bit_blake2b_hex() -> None:
    digest = content_digest("abc")
    assert digest == "d8bb14d833d59559"


def test_digest_is_nfkc_insensitive() -> None:
    assert content_digest("验证码１２３４") == content_digest("验证码1234")


def test_digest_distinguishes_content() -> None:
    assert content_digest("验证码1234") != content_digest("验证码1235")


def test_digest_is_case_sensitive() -> None:
    assert content_digest("Code") != content_digest("code")


# --- pruning -----------------------------------------------------------------------------


def test_prune_keeps_entries_inside_longest_window() -> None:
    history = sends(0, HOUR, DAY - 1, DAY, DAY + 1)
    assert prune(history, NOW, DEFAULT) == sends(0, HOUR, DAY - 1)


def test_prune_uses_longest_active_window() -> None:
    history = sends(0, 59, 60, HOUR)
    assert prune(history, NOW, only(per_minute=1)) == sends(0, 59)


def test_prune_with_long_same_content_window() -> None:
    limits = only(per_day=10, same_content_window=2 * DAY)
    history = sends(DAY + 1, 2 * DAY)
    assert prune(history, NOW, limits) == sends(DAY + 1)


def test_prune_with_no_rules_keeps_nothing() -> None:
    assert prune(sends(0, 1), NOW, NO_RULES) == []


def test_prune_keeps_zero_cap_windows() -> None:
    assert prune(sends(30), NOW, only(per_minute=0)) == sends(30)


def test_pruned_history_decides_the_same() -> None:
    history = sends(10, 70, 3000, 4000, DAY - 5, DAY + 5, 2 * DAY, digest=A)
    for digest in (A, B):
        assert check_number(prune(history, NOW, DEFAULT), digest, NOW, DEFAULT) == check_number(
            history, digest, NOW, DEFAULT
        )


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        (DEFAULT, DAY),
        (only(per_minute=1), MINUTE),
        (only(per_hour=3), HOUR),
        (only(same_content_window=120), 120),
        (NO_RULES, 0),
    ],
)
def test_longest_window(limits: FrequencyLimits, expected: float) -> None:
    assert longest_window(limits) == expected


# --- account daily cap -------------------------------------------------------------------


def test_account_daily_unlimited_by_default() -> None:
    assert check_account_daily(10**9, 99, DEFAULT)


@pytest.mark.parametrize(
    ("count", "n_new", "allowed"),
    [
        (0, 100, True),
        (90, 10, True),  # reaching the cap exactly is allowed
        (91, 10, False),
        (100, 1, False),
        (100, 0, True),
    ],
)
def test_account_daily_cap(count: int, n_new: int, allowed: bool) -> None:
    assert check_account_daily(count, n_new, only(daily_account_cap=100)) is allowed


def test_account_daily_zero_cap_refuses_any_send() -> None:
    assert not check_account_daily(0, 1, only(daily_account_cap=0))
