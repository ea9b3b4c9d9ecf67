"""The MO push retry schedule and the per-account circuit, driven by plain datetimes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta, timezone

import pytest

from smsgate.core.push_policy import (
    CircuitDecision,
    CircuitState,
    PushSchedule,
    after_attempt,
    circuit_state,
    counted_failures,
    earliest_send_at,
    is_paused,
    is_success,
    next_attempt_at,
    record_failure,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
DEFAULT = PushSchedule()
# Pause shorter than the window: the case where the failures that caused a pause are
# still inside the window when it ends, so only counted_since stops a re-pause.
SHORT_PAUSE = PushSchedule(pause_for=timedelta(minutes=10))


def minutes(m: float) -> timedelta:
    return timedelta(minutes=m)


def feed_failures(
    times: Iterable[datetime],
    schedule: PushSchedule = DEFAULT,
    state: CircuitState | None = None,
    history: list[datetime] | None = None,
) -> tuple[CircuitState, list[datetime]]:
    """Record each failure as the push service would: store it, then re-evaluate."""
    current = state or CircuitState()
    recorded = history if history is not None else []
    for t in times:
        recorded.append(t)
        current = record_failure(current, t, recorded, schedule)
    return current, recorded


def every_minute(count: int, start: datetime = T0) -> list[datetime]:
    return [start + minutes(i) for i in range(count)]


# --- schedule -------------------------------------------------------------------------


def test_default_schedule_matches_protocol() -> None:
    assert DEFAULT.retry_offsets == (minutes(1), minutes(3), minutes(10))
    assert DEFAULT.pause_after_failures == 10
    assert DEFAULT.failure_window == minutes(60)
    assert DEFAULT.pause_for == minutes(60)
    assert DEFAULT.max_attempts == 4


def test_schedule_is_frozen() -> None:
    with pytest.raises(FrozenInstanceError):
        DEFAULT.pause_for = minutes(1)  # type: ignore[misc]


def test_from_minutes_accepts_fractions() -> None:
    schedule = PushSchedule.from_minutes(
        retry_minutes=(0.05, 0.1, 0.25),
        pause_after_failures=3,
        failure_window_minutes=0.5,
        pause_minutes=0.2,
    )
    assert schedule.retry_offsets == (
        timedelta(seconds=3),
        timedelta(seconds=6),
        timedelta(seconds=15),
    )
    assert schedule.failure_window == timedelta(seconds=30)
    assert schedule.pause_for == timedelta(seconds=12)
    assert schedule.pause_after_failures == 3


def test_from_minutes_defaults_equal_the_default_schedule() -> None:
    assert PushSchedule.from_minutes() == DEFAULT


def test_empty_offsets_mean_a_single_attempt() -> None:
    schedule = PushSchedule(retry_offsets=())
    assert schedule.max_attempts == 1
    assert next_attempt_at(T0, 1, schedule) is None


@pytest.mark.parametrize(
    "offsets",
    [
        (minutes(0), minutes(3)),
        (minutes(-1),),
        (minutes(3), minutes(1)),
        (minutes(1), minutes(1)),
    ],
)
def test_offsets_must_be_positive_and_strictly_increasing(offsets: tuple[timedelta, ...]) -> None:
    with pytest.raises(ValueError, match="retry offsets"):
        PushSchedule(retry_offsets=offsets)


def test_threshold_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="pause_after_failures"):
        PushSchedule(pause_after_failures=0)


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        PushSchedule(failure_window=timedelta(0))


def test_pause_must_be_positive() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        PushSchedule(pause_for=minutes(-1))


# --- retry, per reply -----------------------------------------------------------------


@pytest.mark.parametrize(("attempts", "offset"), [(1, 1), (2, 3), (3, 10)])
def test_retries_are_measured_from_the_first_attempt(attempts: int, offset: int) -> None:
    assert next_attempt_at(T0, attempts, DEFAULT) == T0 + minutes(offset)


def test_fourth_failure_ends_the_push() -> None:
    assert next_attempt_at(T0, 4, DEFAULT) is None
    assert next_attempt_at(T0, 5, DEFAULT) is None


def test_zero_attempts_is_refused() -> None:
    with pytest.raises(ValueError, match="attempts_made"):
        next_attempt_at(T0, 0, DEFAULT)


def test_fractional_minute_retries() -> None:
    schedule = PushSchedule.from_minutes(retry_minutes=(0.05, 0.15, 0.5))
    assert next_attempt_at(T0, 1, schedule) == T0 + timedelta(seconds=3)
    assert next_attempt_at(T0, 2, schedule) == T0 + timedelta(seconds=9)
    assert next_attempt_at(T0, 3, schedule) == T0 + timedelta(seconds=30)
    assert next_attempt_at(T0, 4, schedule) is None


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_attempt_at(datetime(2024, 5, 1, 12, 0), 1, DEFAULT)


def test_other_timezones_are_accepted_as_the_same_instant() -> None:
    beijing = T0.astimezone(timezone(timedelta(hours=8)))
    assert next_attempt_at(beijing, 1, DEFAULT) == T0 + minutes(1)


# --- success of one attempt -----------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body"),
    [(200, "0"), (200, " 0\n"), (204, "0"), (299, "\t0\r\n"), (200, "\ufeff0"), (200, "\ufeff0\n")],
)
def test_success_is_2xx_and_body_zero(status: int, body: str) -> None:
    assert is_success(status, body) is True


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (None, None),  # timeout or connection error
        (200, None),
        (None, "0"),
        (200, ""),
        (200, "ok"),
        (200, "00"),
        (200, "0 0"),
        (200, "1"),
        (200, '{"code":0}'),
        (199, "0"),
        (300, "0"),
        (302, "0"),
        (404, "0"),
        (500, "0"),
    ],
)
def test_anything_else_is_a_failure(status: int | None, body: str | None) -> None:
    assert is_success(status, body) is False


# --- circuit: counting ----------------------------------------------------------------


def test_failure_exactly_one_window_old_has_left_it() -> None:
    now = T0 + minutes(60)
    assert counted_failures([T0], now, DEFAULT, None) == 0
    assert counted_failures([T0 + timedelta(microseconds=1)], now, DEFAULT, None) == 1


def test_failures_in_the_future_are_not_counted() -> None:
    assert counted_failures([T0 + minutes(1)], T0, DEFAULT, None) == 0


def test_failures_at_or_before_counted_since_are_ignored() -> None:
    times = every_minute(5)
    assert counted_failures(times, T0 + minutes(5), DEFAULT, T0 + minutes(2)) == 2


def test_unsorted_failure_times_are_counted() -> None:
    times = list(reversed(every_minute(5)))
    assert counted_failures(times, T0 + minutes(5), DEFAULT, None) == 5


# --- circuit: pausing -----------------------------------------------------------------


def test_ten_failures_within_the_hour_pause_from_the_tenth() -> None:
    times = every_minute(10)
    state, _ = feed_failures(times)
    assert state == CircuitState(paused_until=times[-1] + minutes(60), counted_since=times[-1])


def test_nine_failures_do_not_pause() -> None:
    state, _ = feed_failures(every_minute(9))
    assert state == CircuitState()


def test_ten_failures_spread_past_the_window_do_not_pause() -> None:
    # The first failure is 61 minutes before the tenth: only nine are in the window.
    times = [T0] + [T0 + minutes(53 + i) for i in range(8)] + [T0 + minutes(61)]
    assert len(times) == 10
    state, _ = feed_failures(times)
    assert state == CircuitState()


def test_ten_failures_exactly_one_window_apart_do_not_pause() -> None:
    times = [T0] + [T0 + minutes(50 + i) for i in range(8)] + [T0 + minutes(60)]
    state, _ = feed_failures(times)
    assert state.paused_until is None


def test_a_success_in_between_does_not_reset_the_count() -> None:
    state = CircuitState()
    failures: list[datetime] = []
    for i in range(11):
        at = T0 + minutes(i)
        succeeded = i == 5
        if not succeeded:
            failures.append(at)
        state = after_attempt(state, at, succeeded, failures, DEFAULT)
    assert state.paused_until == T0 + minutes(10) + minutes(60)


def test_a_success_leaves_the_state_unchanged() -> None:
    paused = CircuitState(paused_until=T0 + minutes(30), counted_since=T0)
    assert after_attempt(paused, T0 + minutes(1), True, [T0], DEFAULT) is paused


def test_after_attempt_records_a_failure() -> None:
    times = every_minute(10)
    state = after_attempt(CircuitState(), times[-1], False, times, DEFAULT)
    assert state.paused_until == times[-1] + minutes(60)


def test_failure_being_recorded_must_be_in_the_history() -> None:
    with pytest.raises(ValueError, match="include the failure"):
        record_failure(CircuitState(), T0 + minutes(9), every_minute(9), DEFAULT)


def test_fractional_minute_circuit() -> None:
    schedule = PushSchedule.from_minutes(
        retry_minutes=(0.05,),
        pause_after_failures=3,
        failure_window_minutes=0.1,
        pause_minutes=0.05,
    )
    times = [T0, T0 + timedelta(seconds=2), T0 + timedelta(seconds=4)]
    state, _ = feed_failures(times, schedule)
    assert state.paused_until == T0 + timedelta(seconds=7)
    # Three failures 6 seconds apart end to end are not within a 6-second window.
    spread = [T0, T0 + timedelta(seconds=3), T0 + timedelta(seconds=6)]
    assert feed_failures(spread, schedule)[0] == CircuitState()


# --- circuit: during and after a pause ------------------------------------------------


def test_pause_ends_exactly_at_paused_until() -> None:
    state = CircuitState(paused_until=T0 + minutes(60), counted_since=T0)
    assert is_paused(state, T0) is True
    assert is_paused(state, T0 + minutes(60) - timedelta(microseconds=1)) is True
    assert is_paused(state, T0 + minutes(60)) is False


def test_never_paused_state_is_not_paused() -> None:
    assert is_paused(CircuitState(), T0) is False


def test_circuit_state_reports_pause_and_counted_failures() -> None:
    times = every_minute(10)
    state, history = feed_failures(times)
    during = circuit_state(history, T0 + minutes(30), DEFAULT, state)
    assert during == CircuitDecision(paused=True, paused_until=T0 + minutes(69), failures=0)
    after = circuit_state(history, T0 + minutes(69), DEFAULT, state)
    assert after == CircuitDecision(paused=False, paused_until=None, failures=0)


def test_circuit_state_counts_failures_toward_a_pause() -> None:
    times = every_minute(7)
    state, history = feed_failures(times)
    decision = circuit_state(history, T0 + minutes(7), DEFAULT, state)
    assert decision == CircuitDecision(paused=False, paused_until=None, failures=7)


def test_reply_arriving_during_a_pause_waits_for_its_end() -> None:
    state, _ = feed_failures(every_minute(10))
    decision = circuit_state([], T0 + minutes(20), DEFAULT, state)
    assert earliest_send_at(T0 + minutes(20), decision.paused_until) == T0 + minutes(69)


def test_push_due_after_the_pause_keeps_its_time() -> None:
    assert earliest_send_at(T0 + minutes(90), T0 + minutes(69)) == T0 + minutes(90)


def test_push_without_a_pause_keeps_its_time() -> None:
    assert earliest_send_at(T0, None) == T0


def test_one_failure_after_a_pause_does_not_repause() -> None:
    # Pause shorter than the window: the nine earlier failures are still in the window.
    state, history = feed_failures(every_minute(10), SHORT_PAUSE)
    assert state.paused_until == T0 + minutes(19)
    after, _ = feed_failures([T0 + minutes(19)], SHORT_PAUSE, state, history)
    assert after == state
    assert not is_paused(after, T0 + minutes(19))


def test_one_failure_after_a_default_pause_does_not_repause() -> None:
    state, history = feed_failures(every_minute(10))
    after, _ = feed_failures([T0 + minutes(69)], DEFAULT, state, history)
    assert not is_paused(after, T0 + minutes(69))


def test_ten_new_failures_after_a_pause_pause_again() -> None:
    state, history = feed_failures(every_minute(10), SHORT_PAUSE)
    new = every_minute(10, start=T0 + minutes(19))
    after, _ = feed_failures(new, SHORT_PAUSE, state, history)
    assert after == CircuitState(paused_until=new[-1] + minutes(10), counted_since=new[-1])


def test_failures_during_a_pause_do_not_extend_it() -> None:
    state, history = feed_failures(every_minute(10), SHORT_PAUSE)
    in_flight = [T0 + minutes(9) + timedelta(seconds=s) for s in range(1, 11)]
    after, _ = feed_failures(in_flight, SHORT_PAUSE, state, history)
    assert after == state


def test_failures_during_a_pause_count_toward_the_next_one() -> None:
    state, history = feed_failures(every_minute(10), SHORT_PAUSE)
    in_flight = [T0 + minutes(9) + timedelta(seconds=s) for s in range(1, 10)]  # nine
    after, history = feed_failures(in_flight, SHORT_PAUSE, state, history)
    assert after == state
    final, _ = feed_failures([T0 + minutes(20)], SHORT_PAUSE, after, history)
    assert final == CircuitState(paused_until=T0 + minutes(30), counted_since=T0 + minutes(20))


def test_circuit_state_is_frozen_plain_values() -> None:
    state = CircuitState(paused_until=T0, counted_since=T0)
    with pytest.raises(FrozenInstanceError):
        state.paused_until = None  # type: ignore[misc]
