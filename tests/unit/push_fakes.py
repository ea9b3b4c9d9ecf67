"""In-memory stand-ins for the push worker's ports: the queue and the pusher.

``MemoryPushQueue`` keeps what ``store/inbound.py`` keeps, with the same rules (due,
not paused, lease, fair share, circuit evaluated at the latest failure); the real store
is tested against the same scenarios in tests/integration/test_push.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from smsgate.core.push_policy import CircuitState, is_paused
from smsgate.core.pushes import AttemptRecord, ClaimedPush, PushAttempt
from smsgate.core.states import PushState
from tests.support.clock import ManualClock


@dataclass
class Row:
    mo_id: int
    account_id: int
    url: str | None
    phone: str
    content: str
    next_at: datetime
    state: PushState = PushState.PENDING
    series: int = 1
    attempts: int = 0
    first_attempt_at: datetime | None = None
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    error: str | None = None


@dataclass
class MemoryPushQueue:
    rows: dict[int, Row] = field(default_factory=dict)
    attempts: list[PushAttempt] = field(default_factory=list)
    circuits: dict[int, CircuitState] = field(default_factory=dict)
    batches: list[int] = field(default_factory=list)  # records per record_attempts call

    def add(self, account_id: int, url: str | None, at: datetime, content: str = "hi") -> int:
        mo_id = len(self.rows) + 1
        self.rows[mo_id] = Row(mo_id, account_id, url, "13800138000", content, at)
        return mo_id

    def claim_pushes(
        self,
        node: str,
        limit: int,
        now: datetime,
        lease_before: datetime,
        busy: Mapping[int, int] | None = None,
        per_account: int | None = None,
    ) -> list[ClaimedPush]:
        taken = dict(busy or {})
        chosen: list[Row] = []
        for row in sorted(self.rows.values(), key=lambda r: (r.next_at, r.mo_id)):
            if len(chosen) == limit:
                break
            if not self._due(row, now, lease_before):
                continue
            if per_account is not None and taken.get(row.account_id, 0) >= per_account:
                continue
            taken[row.account_id] = taken.get(row.account_id, 0) + 1
            row.claimed_by, row.claimed_at = node, now
            chosen.append(row)
        return [
            ClaimedPush(
                r.mo_id,
                r.account_id,
                r.url,
                r.phone,
                r.content,
                r.series,
                r.attempts,
                r.first_attempt_at,
            )
            for r in chosen
        ]

    def _due(self, row: Row, now: datetime, lease_before: datetime) -> bool:
        circuit = self.circuits.get(row.account_id, CircuitState())
        return (
            row.state is PushState.PENDING
            and row.next_at <= now
            and (row.claimed_by is None or (row.claimed_at or now) < lease_before)
            and not is_paused(circuit, now)
        )

    def record_attempts(
        self, node: str, records: Sequence[AttemptRecord]
    ) -> list[CircuitState | None]:
        self.batches.append(len(records))
        return [self._record(node, r) for r in records]

    def _record(self, node: str, record: AttemptRecord) -> CircuitState | None:
        attempt, outcome, circuit = record.attempt, record.outcome, record.circuit
        failures_since = record.failures_since
        self.attempts.append(attempt)
        row = self.rows[attempt.mo_id]
        if row.claimed_by == node and row.series == attempt.series:
            row.state, row.attempts = outcome.state, outcome.attempts
            row.first_attempt_at, row.error = outcome.first_attempt_at, outcome.error
            row.next_at = outcome.next_at or row.next_at
            row.claimed_by = row.claimed_at = None
        if circuit is None:
            return None
        state = self.circuits.get(attempt.account_id, CircuitState())
        since = failures_since or attempt.at
        start = since if state.counted_since is None else max(since, state.counted_since)
        times = [
            a.at
            for a in self.attempts
            if a.account_id == attempt.account_id and not a.ok and a.at > start
        ]
        new = circuit(state, times, max(times))
        if new == state:
            return None
        self.circuits[attempt.account_id] = new
        return new

    def settle_without_url(self, node: str, mo_id: int, now: datetime) -> None:
        row = self.rows[mo_id]
        row.state, row.error, row.claimed_by = PushState.FAILED, "no url", None

    def release_claims(self, node: str | None = None, exclude_node: str | None = None) -> int:
        released = 0
        for row in self.rows.values():
            mine = node is None or row.claimed_by == node
            other = exclude_node is None or row.claimed_by != exclude_node
            if row.claimed_by is not None and mine and other:
                row.claimed_by = None
                released += 1
        return released

    def failures(self, account_id: int) -> int:
        return sum(1 for a in self.attempts if a.account_id == account_id and not a.ok)


Answer = tuple[int | None, str | None]


@dataclass
class ScriptedPusher:
    """Answers per URL: a fixed (status, body), or an async function (e.g. one that hangs)."""

    clock: ManualClock
    answers: dict[str, Answer | Callable[[], Awaitable[Answer]]] = field(default_factory=dict)
    calls: list[tuple[datetime, str, str]] = field(default_factory=list)  # (at, url, content)
    closed: bool = False

    async def push(self, url: str, phone: str, content: str) -> Answer:
        self.calls.append((self.clock.now(), url, content))
        answer = self.answers.get(url, (200, "0"))
        if callable(answer):
            return await answer()
        return answer

    async def close(self) -> None:
        self.closed = True


def hang_until(event: asyncio.Event) -> Callable[[], Awaitable[Answer]]:
    async def answer() -> Answer:
        await event.wait()
        return 200, "0"

    return answer
