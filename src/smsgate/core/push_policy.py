"""When to push a user reply (MO) to an account's URL again, and when to stop trying.

Two independent decisions, both pure (time is always a parameter; aware UTC datetimes):

Retry, per reply
    The first attempt is made when the reply arrives. If it fails, it is retried at
    fixed offsets *from the first attempt* (default 1, 3 and 10 minutes), not from the
    previous attempt, so a slow receiver does not stretch the schedule. After the last
    offset's attempt fails the push is failed (:func:`next_attempt_at` returns ``None``).

Circuit, per account
    When an account's URL has failed ``pause_after_failures`` attempts within the last
    ``failure_window``, every push to that account pauses for ``pause_for``, counted from
    the failure that reached the threshold. Replies that are due during a pause are not
    attempted (so not counted as failures); they wait until the pause ends
    (:func:`earliest_send_at`). A success does not clear earlier failures: a URL that
    fails nine times out of ten is still broken.

    ``counted_since``: failures at or before it are ignored. A pause sets it to the
    moment the pause began, so the failures that caused a pause can never cause another
    one after it ends; otherwise, whenever ``pause_for`` is shorter than
    ``failure_window``, the account would pause again on its first failure after every
    pause, forever. Failures recorded *while* paused (attempts already in flight when it
    began) never extend the pause, but they are after ``counted_since`` and so count
    toward the next one.

The per-account state is a tiny frozen :class:`CircuitState` the caller persists after
each attempt; the failure times themselves are the caller's attempt rows.

Boundaries (all tested): a failure exactly ``failure_window`` old has left the window;
a pause is over at exactly ``paused_until``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

__all__ = [
    "DEFAULT_FAILURE_WINDOW",
    "DEFAULT_PAUSE_AFTER_FAILURES",
    "DEFAULT_PAUSE_FOR",
    "DEFAULT_RETRY_OFFSETS",
    "CircuitDecision",
    "CircuitState",
    "PushSchedule",
    "after_attempt",
    "circuit_state",
    "counted_failures",
    "earliest_send_at",
    "is_paused",
    "is_success",
    "next_attempt_at",
    "record_failure",
]

DEFAULT_RETRY_OFFSETS: tuple[timedelta, ...] = (
    timedelta(minutes=1),
    timedelta(minutes=3),
    timedelta(minutes=10),
)
DEFAULT_PAUSE_AFTER_FAILURES = 10
DEFAULT_FAILURE_WINDOW = timedelta(hours=1)
DEFAULT_PAUSE_FOR = timedelta(hours=1)

_BOM = "\ufeff"


@dataclass(frozen=True, slots=True)
class PushSchedule:
    """The push timings; a setting, so tests and operators can shorten every one of them.

    ``retry_offsets`` are measured from the first attempt and must increase strictly;
    an empty tuple means a single attempt and no retry.
    """

    retry_offsets: tuple[timedelta, ...] = DEFAULT_RETRY_OFFSETS
    pause_after_failures: int = DEFAULT_PAUSE_AFTER_FAILURES
    failure_window: timedelta = DEFAULT_FAILURE_WINDOW
    pause_for: timedelta = DEFAULT_PAUSE_FOR

    def __post_init__(self) -> None:
        """Refuse a schedule that would retry backwards or never let the circuit work."""
        offsets = self.retry_offsets
        if any(o <= timedelta(0) for o in offsets):
            raise ValueError("push retry offsets must be positive")
        if any(a >= b for a, b in pairwise(offsets)):
            raise ValueError("push retry offsets must increase strictly")
        if self.pause_after_failures < 1:
            raise ValueError("pause_after_failures must be at least 1")
        if self.failure_window <= timedelta(0) or self.pause_for <= timedelta(0):
            raise ValueError("failure_window and pause_for must be positive")

    @classmethod
    def from_minutes(
        cls,
        retry_minutes: Sequence[float] = (1, 3, 10),
        pause_after_failures: int = DEFAULT_PAUSE_AFTER_FAILURES,
        failure_window_minutes: float = 60,
        pause_minutes: float = 60,
    ) -> PushSchedule:
        """Build from the settings' minute values; fractions (``0.05``) are allowed."""
        return cls(
            retry_offsets=tuple(timedelta(minutes=m) for m in retry_minutes),
            pause_after_failures=pause_after_failures,
            failure_window=timedelta(minutes=failure_window_minutes),
            pause_for=timedelta(minutes=pause_minutes),
        )

    @property
    def max_attempts(self) -> int:
        """The first attempt plus one per retry offset."""
        return len(self.retry_offsets) + 1


def _require_aware(value: datetime, name: str) -> None:
    """Naive datetimes compare silently among themselves; refuse them at the door."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got {value!r}")


# --- retry, per reply -----------------------------------------------------------------


def next_attempt_at(
    first_attempt_at: datetime, attempts_made: int, schedule: PushSchedule
) -> datetime | None:
    """When to try again after ``attempts_made`` attempts (1-based), all failed.

    ``None`` means there is no attempt left: the push is failed. The result may already
    be in the past (e.g. after a pause); the caller then sends as soon as it may.
    """
    _require_aware(first_attempt_at, "first_attempt_at")
    if attempts_made < 1:
        raise ValueError(f"attempts_made counts attempts already made, got {attempts_made}")
    if attempts_made > len(schedule.retry_offsets):
        return None
    return first_attempt_at + schedule.retry_offsets[attempts_made - 1]


def is_success(status_code: int | None, body: str | None) -> bool:
    """Whether the receiver accepted the reply: HTTP 2xx and a body of ``0``.

    Whitespace around the ``0`` is ignored, and so is a leading UTF-8 byte-order mark
    (PHP files saved "with BOM" emit one before any output). A timeout or connection
    error is passed as ``(None, None)`` and is a failure like any other.
    """
    if status_code is None or body is None or not 200 <= status_code < 300:
        return False
    return body.removeprefix(_BOM).strip() == "0"


# --- circuit, per account -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CircuitState:
    """The per-account circuit as persisted after each attempt (two nullable timestamps).

    ``paused_until``: pushes wait until this instant (exclusive); ``None`` if never paused.
    ``counted_since``: failures at or before this instant no longer count toward a pause.
    """

    paused_until: datetime | None = None
    counted_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class CircuitDecision:
    """What the circuit says at one instant; ``failures`` is for the console's display."""

    paused: bool
    paused_until: datetime | None  # set exactly when ``paused``
    failures: int  # failures counting toward the next pause


def is_paused(state: CircuitState, now: datetime) -> bool:
    """Whether pushes to the account must wait at ``now``; the pause ends at ``paused_until``."""
    _require_aware(now, "now")
    return state.paused_until is not None and now < state.paused_until


def counted_failures(
    failure_times: Sequence[datetime],
    now: datetime,
    schedule: PushSchedule,
    counted_since: datetime | None,
) -> int:
    """How many failures count toward a pause at ``now``.

    A failure counts if it is inside the window ``(now - failure_window, now]`` and after
    ``counted_since``. ``failure_times`` may hold older or unrelated-era failures and need
    not be sorted: the caller can pass whatever its query returns.
    """
    _require_aware(now, "now")
    start = now - schedule.failure_window
    if counted_since is not None:
        start = max(start, counted_since)
    return sum(1 for t in failure_times if start < t <= now)


def circuit_state(
    failure_times: Sequence[datetime],
    now: datetime,
    schedule: PushSchedule,
    state: CircuitState,
) -> CircuitDecision:
    """Whether the account is paused at ``now``, until when, and how many failures count."""
    paused = is_paused(state, now)
    return CircuitDecision(
        paused=paused,
        paused_until=state.paused_until if paused else None,
        failures=counted_failures(failure_times, now, schedule, state.counted_since),
    )


def record_failure(
    state: CircuitState,
    failed_at: datetime,
    failure_times: Sequence[datetime],
    schedule: PushSchedule,
) -> CircuitState:
    """The circuit after a failed attempt at ``failed_at``.

    ``failure_times`` are the account's recorded failures *including this one* (the caller
    stores the attempt, then reads its failures back, in one transaction). If the failures
    counted at ``failed_at`` reach the threshold, the account pauses for ``pause_for`` from
    ``failed_at`` and counting restarts after it. A failure during a pause changes nothing.
    """
    if failed_at not in failure_times:
        raise ValueError("failure_times must include the failure being recorded")
    if is_paused(state, failed_at):
        return state
    counted = counted_failures(failure_times, failed_at, schedule, state.counted_since)
    if counted < schedule.pause_after_failures:
        return state
    return CircuitState(paused_until=failed_at + schedule.pause_for, counted_since=failed_at)


def after_attempt(
    state: CircuitState,
    attempted_at: datetime,
    succeeded: bool,
    failure_times: Sequence[datetime],
    schedule: PushSchedule,
) -> CircuitState:
    """The circuit after any attempt; one call for the push service whatever the outcome.

    A success leaves the state as it is: it does not forgive earlier failures.
    """
    _require_aware(attempted_at, "attempted_at")
    if succeeded:
        return state
    return record_failure(state, attempted_at, failure_times, schedule)


def earliest_send_at(due_at: datetime, paused_until: datetime | None) -> datetime:
    """When a push due at ``due_at`` may go out: not before a pause ends.

    Waiting for the pause is not an attempt, so it spends none of the reply's retries.
    """
    _require_aware(due_at, "due_at")
    if paused_until is None:
        return due_at
    return max(due_at, paused_until)
