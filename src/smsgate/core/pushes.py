"""The records of a reply's push: a claimed push, one attempt, where the push goes next.

The decisions about them (retry offsets, success, the per-account circuit) are
:mod:`smsgate.core.push_policy`'s; these are the values that carry them between the
push service and the store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from smsgate.core.push_policy import CircuitState
from smsgate.core.states import PushState

CircuitRule = Callable[[CircuitState, Sequence[datetime], datetime], CircuitState]
"""The circuit after a failure: given the account's circuit, its recorded failure times and
the latest of them (the moment the circuit is evaluated at)."""


@dataclass(frozen=True, slots=True)
class PushAttempt:
    """One GET to an account's URL and what came back (status None: no answer)."""

    mo_id: int
    account_id: int
    series: int
    attempt: int  # 1-based within the series
    started_at: datetime
    at: datetime  # when the outcome was known; the circuit counts failures by it
    ok: bool
    status: int | None
    body: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class ClaimedPush:
    """A due push taken by one worker, with what it needs to make the attempt."""

    mo_id: int
    account_id: int
    url: str | None  # the account's URL now (None: it has none)
    phone: str
    content: str
    series: int
    attempts: int  # already made in this series
    first_attempt_at: datetime | None


@dataclass(frozen=True, slots=True)
class PushOutcome:
    """Where a push goes after an attempt: pending again (with ``next_at``) or final."""

    state: PushState
    attempts: int
    first_attempt_at: datetime
    next_at: datetime | None
    error: str | None


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One attempt to store, with the push's next step and, for a failure, the circuit."""

    attempt: PushAttempt
    outcome: PushOutcome
    circuit: CircuitRule | None  # None for a success: it never changes the circuit
    failures_since: datetime | None = None  # the start of the circuit's failure window
