"""Records the console reads: operators, ApiKeys, ledger rows, the audit trail, daily counts.

Plain data, shaped for display; the stores fill them and the services pass them on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True, slots=True)
class Operator:
    """A console operator: signs in with a password, manages every account."""

    id: int
    username: str
    password_hash: str  # argon2id of the MD5 hex of the password, as for accounts
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    id: int
    hint: str  # the first characters, to tell keys apart
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    id: int
    delta: int
    kind: str
    ref: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    actor: str
    action: str
    subject: str
    detail: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class DailyCount:
    """Messages created on one UTC day, in one state."""

    day: date
    state: str
    count: int


@dataclass(frozen=True, slots=True)
class DaySummary:
    """One day of an account's chart: every message, and how many of them by state."""

    day: date
    states: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.states.values())


def daily_summaries(counts: list[DailyCount], days: list[date]) -> list[DaySummary]:
    """One summary per day asked for (a day without messages: empty), in that order."""
    by_day: dict[date, dict[str, int]] = {d: {} for d in days}
    for c in counts:
        if c.day in by_day:
            by_day[c.day][c.state] = by_day[c.day].get(c.state, 0) + c.count
    return [DaySummary(d, by_day[d]) for d in days]


def delivery_rate(states: dict[str, int]) -> float | None:
    """Delivered out of the messages with a final outcome; None before any has one."""
    final = sum(states.get(s, 0) for s in ("delivered", "undelivered", "failed", "expired"))
    return states.get("delivered", 0) / final if final else None
