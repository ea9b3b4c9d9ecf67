"""The push worker: deliver each stored reply to its account's URL on the SMSBao schedule.

Each round claims due pushes (never those of a paused account: waiting out a pause is
not an attempt) and makes the attempts in a bounded pool of concurrent tasks. As soon as
an attempt ends it is stored with the push's next step and the account's circuit (in one
transaction with any other attempts that ended meanwhile), before the push can be
claimed again. The decisions are ``core.push_policy``'s; all state is in the database, so
a restart resumes schedules, pauses and pending pushes where they were.

One slow URL never delays other accounts: a worker holds at most ``per_account``
attempts of one account at a time, so a URL that hangs until the timeout can occupy
only those slots, and its other replies wait behind it rather than in front of others.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from smsgate import errors
from smsgate.core.push_policy import (
    CircuitState,
    PushSchedule,
    after_attempt,
    is_success,
    next_attempt_at,
)
from smsgate.core.pushes import AttemptRecord, ClaimedPush, PushAttempt, PushOutcome
from smsgate.core.states import PushState
from smsgate.ports import Clock, Pusher, PushQueue

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PushSettings:
    node: str
    schedule: PushSchedule = field(default_factory=PushSchedule)
    concurrency: int = 32  # attempts in flight in this worker
    per_account: int = 4  # of which at most this many to one account
    poll_seconds: float = 0.2  # how soon a reply written by another process is noticed
    claim_lease: timedelta = timedelta(minutes=2)  # longer than any attempt can take
    single_node: bool = True  # SQLite: every claim not ours is from a dead process
    stop_grace_seconds: float = 5.0  # at stop, attempts in flight may finish this long


def outcome_of(
    push: ClaimedPush, started_at: datetime, ok: bool, error: str | None, schedule: PushSchedule
) -> PushOutcome:
    """Where a push goes after one attempt: done, or pending until the next offset."""
    first = push.first_attempt_at or started_at
    made = push.attempts + 1
    if ok:
        return PushOutcome(PushState.SUCCEEDED, made, first, None, None)
    retry_at = next_attempt_at(first, made, schedule)
    if retry_at is None:
        return PushOutcome(PushState.FAILED, made, first, None, error)
    return PushOutcome(PushState.PENDING, made, first, retry_at, error)


def circuit_after_failure(
    schedule: PushSchedule,
    state: CircuitState,
    failures: Sequence[datetime],
    at: datetime,
) -> CircuitState:
    """The account's circuit after a failure at ``at`` (the store's CircuitRule)."""
    return after_attempt(state, at, False, failures, schedule)


def describe_failure(status: int | None, body: str | None) -> str:
    """Why an attempt failed, in words an operator can act on.

    Never the receiver's words: customers read this, and a URL pointing somewhere it
    should not must not read that place's pages back (operators see the body in the CLI).
    """
    if status is None:
        return "no answer: timeout or connection error"
    if not 200 <= status < 300:
        return f"HTTP {status}"
    return f"HTTP {status} with an answer other than 0 ({len(body or '')} characters)"


class OutcomeWriter:
    """Stores attempts as they end; those that end while a commit runs share the next one.

    A push's outcome is in the database before its attempt task ends (and so before the
    push can be claimed again); batching only saves commits when attempts end together.
    """

    MAX_BATCH = 200

    def __init__(self, queue: PushQueue, node: str) -> None:
        self._queue = queue
        self._node = node
        self._waiting: list[tuple[AttemptRecord, asyncio.Future[CircuitState | None]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def write(self, record: AttemptRecord) -> CircuitState | None:
        """Store one attempt; the account's new circuit state if it changed."""
        future: asyncio.Future[CircuitState | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((record, future))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush(), name="push-outcomes")
        return await future

    async def _flush(self) -> None:
        while self._waiting:
            batch = self._waiting[: self.MAX_BATCH]
            del self._waiting[: self.MAX_BATCH]
            records = [record for record, _ in batch]
            try:
                results = await asyncio.to_thread(self._queue.record_attempts, self._node, records)
            except Exception as exc:  # each waiting attempt task reports it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def idle(self) -> None:
        """Wait until every attempt handed over is stored (or failed to be)."""
        if self._flushing is not None:
            await asyncio.gather(self._flushing, return_exceptions=True)


class PushWorker:
    def __init__(
        self, queue: PushQueue, pusher: Pusher, clock: Clock, settings: PushSettings
    ) -> None:
        self._queue = queue
        self._pusher = pusher
        self._clock = clock
        self._settings = settings
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._inflight: dict[asyncio.Task[None], int] = {}  # attempt -> account id
        self._busy: Counter[int] = Counter()  # attempts in flight per account
        self._refill_at = max(1, settings.concurrency // 4)
        self._writer = OutcomeWriter(queue, settings.node)

    def wake(self) -> None:
        """There is work now (a reply was stored, a push re-pushed): do not wait to poll."""
        self._wake.set()

    async def start(self) -> None:
        if self._settings.single_node:
            released = await asyncio.to_thread(
                self._queue.release_claims, None, self._settings.node
            )
            if released:
                log.warning("%d push(es) in flight at a crash will be attempted again", released)
        self._loop_task = asyncio.create_task(self._run(), name="push-worker")

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        await self._finish_inflight()
        await self._writer.idle()  # outcomes first: a released claim is pushed again
        try:
            await asyncio.to_thread(self._queue.release_claims, self._settings.node)
        except Exception:  # the claims expire after the lease anyway
            log.exception("could not release this worker's push claims")
        await self._pusher.close()

    async def _finish_inflight(self) -> None:
        tasks = list(self._inflight)
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=self._settings.stop_grace_seconds)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    # -- rounds -----------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                claimed = await self.run_once()
            except Exception:  # a database hiccup must not stop the pushes for good
                log.exception("push round failed; retrying")
                claimed = 0
            if claimed == 0 or self._free() == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._settings.poll_seconds)
                self._wake.clear()

    async def run_once(self) -> int:
        """Claim what is due and fits in the pool, start those attempts; how many."""
        free = self._free()
        if free == 0:
            return 0
        now = self._clock.now()
        claimed = await asyncio.to_thread(
            self._queue.claim_pushes,
            self._settings.node,
            free,
            now,
            now - self._settings.claim_lease,
            dict(self._busy),
            self._settings.per_account,
        )
        for push in claimed:
            self._spawn(push)
        return len(claimed)

    async def drain(self) -> None:
        """Wait for every attempt in flight (tests, benchmarks)."""
        while self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)

    async def run_due(self) -> int:
        """Attempt everything due now, and wait for the outcomes; how many attempts."""
        total = 0
        while claimed := await self.run_once():
            total += claimed
            await self.drain()
        return total

    def _free(self) -> int:
        return self._settings.concurrency - len(self._inflight)

    def _spawn(self, push: ClaimedPush) -> None:
        task = asyncio.create_task(self._attempt(push), name=f"push-{push.mo_id}")
        self._inflight[task] = push.account_id
        self._busy[push.account_id] += 1
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        account_id = self._inflight.pop(task)
        self._busy[account_id] -= 1
        if self._busy[account_id] <= 0:
            del self._busy[account_id]
        # Refill in batches, not one claim query per finished attempt.
        if self._free() >= self._refill_at or not self._inflight:
            self._wake.set()

    # -- one attempt ------------------------------------------------------------------

    async def _attempt(self, push: ClaimedPush) -> None:
        try:
            if push.url is None:
                now = self._clock.now()
                await asyncio.to_thread(
                    self._queue.settle_without_url, self._settings.node, push.mo_id, now
                )
                return
            await self._push(push, push.url)
        except Exception:  # the claim expires after the lease and the push is tried again
            log.exception("push of reply %d could not be recorded", push.mo_id)

    async def _push(self, push: ClaimedPush, url: str) -> None:
        started = self._clock.now()
        refused = None
        try:
            status, body = await self._pusher.push(url, push.phone, push.content)
        except errors.TargetRefused as exc:  # an internal address: failed, and says why
            status, body, refused = None, None, f"refused: {exc.reason}"
        except Exception as exc:  # a pusher bug or a URL it cannot use: a failed attempt
            log.warning("push of reply %d failed: %r", push.mo_id, exc)
            status, body = None, None
        finished = self._clock.now()
        ok = is_success(status, body)
        error = None if ok else refused or describe_failure(status, body)
        attempt = PushAttempt(
            push.mo_id,
            push.account_id,
            push.series,
            push.attempts + 1,
            started,
            finished,
            ok,
            status,
            body,
            error,
        )
        await self._record(attempt, outcome_of(push, started, ok, error, self._settings.schedule))

    async def _record(self, attempt: PushAttempt, outcome: PushOutcome) -> None:
        schedule = self._settings.schedule
        rule = None if attempt.ok else functools.partial(circuit_after_failure, schedule)
        record = AttemptRecord(attempt, outcome, rule, attempt.at - schedule.failure_window)
        changed = await self._writer.write(record)
        if changed is not None and changed.paused_until is not None:
            log.warning(
                "pushes to account %d paused until %s: %d failed attempts within %s",
                attempt.account_id,
                changed.paused_until.isoformat(timespec="seconds"),
                schedule.pause_after_failures,
                schedule.failure_window,
            )
        if outcome.state is PushState.FAILED:
            log.info("push of reply %d failed after %d attempts", attempt.mo_id, outcome.attempts)
