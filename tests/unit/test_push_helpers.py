"""The small decisions around a push: the URL, the sender's number, the extended code,
the outcome of one attempt, and the settings that shorten the schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import ValidationError

from smsgate.client.receiver import parse_push
from smsgate.core.push_policy import PushSchedule
from smsgate.core.pushes import ClaimedPush
from smsgate.core.states import PushState
from smsgate.pushers.http import push_url
from smsgate.services.inbound import extended_code, normalise_phone
from smsgate.services.push import describe_failure, outcome_of
from smsgate.settings import Settings

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TRICKY = ["你好", "😀👍🏽", "a&b=c", "1+1=2", "100%", "%E4%BD%A0", "line1\nline2\r\n", " x ", "#?/"]

# -- the URL -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h/mo", "http://h/mo?m=1&c=x"),
        ("http://h/mo?token=t", "http://h/mo?token=t&m=1&c=x"),
        ("http://h/mo?", "http://h/mo?m=1&c=x"),
        ("http://h/mo?a=1&", "http://h/mo?a=1&m=1&c=x"),
        ("http://h/mo#frag", "http://h/mo?m=1&c=x"),
        ("https://h:8443/a/b.php?x=%2B#f", "https://h:8443/a/b.php?x=%2B&m=1&c=x"),
    ],
)
def test_m_and_c_are_appended_with_the_right_separator(url: str, expected: str) -> None:
    assert push_url(url, "1", "x") == expected


@pytest.mark.parametrize("content", TRICKY)
def test_content_is_utf8_percent_encoded_and_round_trips(content: str) -> None:
    url = push_url("http://h/mo?k=v", "13800138000", content)
    query = urlsplit(url).query
    assert all(ch not in query.split("c=", 1)[1] for ch in " +&=#\n")  # nothing left bare
    assert parse_qs(query, keep_blank_values=True)["c"] == [content]
    assert parse_push(query).content == content  # what the SDK's receiver decodes


# -- the sender and the destination -------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13800138000", "13800138000"),
        ("+8613800138000", "13800138000"),
        ("8613800138000", "13800138000"),
        ("008613800138000", "13800138000"),
        (" 13800138000 ", "13800138000"),
        ("+14155552671", "+14155552671"),
        ("14155552671", "+14155552671"),
        ("hello", None),
        ("", None),
        ("12345", None),
    ],
)
def test_senders_are_stored_as_messages_store_numbers(raw: str, expected: str | None) -> None:
    assert normalise_phone(raw) == expected


@pytest.mark.parametrize(
    ("dest", "service", "expected"),
    [
        ("1069001234", "106900", "1234"),
        ("106900", "106900", None),  # the bare service number: no code
        ("1069991234", "106900", None),  # another service number
        ("1234", "", "1234"),  # no service number configured: the whole address
        (" 1234 ", "", "1234"),
        ("12a4", "", None),
        ("１２３", "", None),  # only ASCII digits make a code
        (None, "106900", None),
        ("", "", None),
    ],
)
def test_extended_code_follows_the_service_number(
    dest: str | None, service: str, expected: str | None
) -> None:
    assert extended_code(dest, service) == expected


# -- one attempt's outcome -------------------------------------------------------------------


def claimed(attempts: int = 0, first: datetime | None = None) -> ClaimedPush:
    return ClaimedPush(1, 1, "http://h/", "13800138000", "hi", 1, attempts, first)


def test_the_first_attempt_fixes_the_origin_of_the_schedule() -> None:
    out = outcome_of(claimed(), T0, False, "HTTP 500", PushSchedule())
    assert out.state is PushState.PENDING
    assert (out.attempts, out.first_attempt_at) == (1, T0)
    assert out.next_at == T0 + timedelta(minutes=1)


def test_later_attempts_keep_the_origin_and_the_fourth_failure_is_final() -> None:
    later = T0 + timedelta(minutes=5)
    third = outcome_of(claimed(2, T0), later, False, "x", PushSchedule())
    assert third.next_at == T0 + timedelta(minutes=10)
    fourth = outcome_of(claimed(3, T0), later, False, "x", PushSchedule())
    assert (fourth.state, fourth.attempts, fourth.next_at) == (PushState.FAILED, 4, None)
    assert fourth.error == "x"


def test_success_is_final_whatever_the_attempt() -> None:
    out = outcome_of(claimed(3, T0), T0, True, None, PushSchedule())
    assert (out.state, out.attempts, out.error) == (PushState.SUCCEEDED, 4, None)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (None, None, "no answer: timeout or connection error"),
        (500, "0", "HTTP 500"),
        (301, "", "HTTP 301"),
        (200, "ok", "HTTP 200 with an answer other than 0 (2 characters)"),
        (200, "", "HTTP 200 with an answer other than 0 (0 characters)"),
    ],
)
def test_failures_are_described_for_operators(
    status: int | None, body: str | None, expected: str
) -> None:
    assert describe_failure(status, body) == expected


# -- settings ------------------------------------------------------------------------------


def test_schedule_settings_take_fractional_minutes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SMSGATE_PUSH_RETRY_MINUTES", "0.02, 0.05,0.1")
    monkeypatch.setenv("SMSGATE_PUSH_PAUSE_AFTER_FAILURES", "3")
    monkeypatch.setenv("SMSGATE_PUSH_FAILURE_WINDOW_MINUTES", "0.5")
    monkeypatch.setenv("SMSGATE_PUSH_PAUSE_MINUTES", "0.25")
    schedule = Settings().push_schedule
    assert schedule.retry_offsets == (
        timedelta(seconds=1.2),
        timedelta(seconds=3),
        timedelta(seconds=6),
    )
    assert (schedule.pause_after_failures, schedule.failure_window, schedule.pause_for) == (
        3,
        timedelta(seconds=30),
        timedelta(seconds=15),
    )


def test_default_settings_are_the_smsbao_schedule() -> None:
    settings = Settings()
    assert settings.push_schedule == PushSchedule()
    assert settings.push_timeout_seconds == 5


@pytest.mark.parametrize("value", ["3,1", "0,1", "-1", "1,x"])
def test_a_schedule_that_goes_backwards_is_refused(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMSGATE_PUSH_RETRY_MINUTES", value)
    with pytest.raises(ValidationError):
        Settings()
