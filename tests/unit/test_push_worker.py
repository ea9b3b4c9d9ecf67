"""The push worker's decisions with a controllable clock: schedule, circuit, pool.

The queue and the pusher are in-memory fakes (tests/unit/push_fakes.py); the same
scenarios run against the real store and HTTP pusher in tests/integration/test_push.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest

from smsgate.core.push_policy import CircuitState, PushSchedule
from smsgate.core.states import PushState
from smsgate.services.push import PushSettings, PushWorker
from tests.support.clock import ManualClock
from tests.unit.push_fakes import MemoryPushQueue, ScriptedPusher, hang_until

GOOD, BAD = "http://good/mo", "http://bad/mo"
ALICE, BOB = 1, 2
# One attempt per reply and no retries: every reply is exactly one failure, so the
# circuit's edge cases can be counted exactly.
ONE_SHOT = PushSchedule(retry_offsets=())
MINUTE = 60.0
HOUR = 3600.0


@pytest.fixture
def queue() -> MemoryPushQueue:
    return MemoryPushQueue()


@pytest.fixture
def pusher(clock: ManualClock) -> ScriptedPusher:
    return ScriptedPusher(clock, {BAD: (500, "error")})


def worker(
    queue: MemoryPushQueue,
    pusher: ScriptedPusher,
    clock: ManualClock,
    schedule: PushSchedule = ONE_SHOT,
    **kw: int,
) -> PushWorker:
    return PushWorker(queue, pusher, clock, PushSettings("w", schedule, **kw))


async def eventually(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    """Let the worker's tasks (and their threads) run until ``condition`` holds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def fail_n(queue: MemoryPushQueue, w: PushWorker, clock: ManualClock, n: int) -> None:
    """``n`` replies to the broken URL, one failed attempt each, now."""
    for _ in range(n):
        queue.add(ALICE, BAD, clock.now())
    assert await w.run_due() == n


# -- schedule ----------------------------------------------------------------------------


async def test_first_attempt_at_once_then_1_3_10_minutes_after_it(
    queue: MemoryPushQueue, pusher: ScriptedPusher, clock: ManualClock
) -> None:
    w = worker(queue, pusher, clock, PushSchedule())
    start = clock.now()
    mo_id = queue.add(ALICE, BAD, start)
    seen = []
    for _ in range(15 * 60):  # every second for 15 minutes
        if await w.run_due():
            seen.append((clock.now() - start).total_seconds())
        clock.advance(1)
    assert seen == [0, 60, 180, 600]
    row = queue.rows[mo_id]
    assert (row.state, row.attempts, row.first_attempt_at) == (PushState.FAILED, 4, start)
    assert row.error == "HTTP 500"


async def test_a_late_retry_does_not_stretch_the_schedule(
    queue: MemoryPushQueue, pusher: ScriptedPusher, clock: ManualClock
) -> None:
    """Offsets count from the first attempt, not from the previous (late) one."""
    w = worker(queue, pusher, clock, PushSchedule())
    start = clock.now()
    mo_id = queue.add(ALICE, BAD, start)
    await w.run_due()
    clock.advance(150)  # the worker was busy: the +1 min retry runs at +2.5 min
    await w.run_due()
    assert queue.rows[mo_id].next_at == start + timedelta(minutes=3)


async def test_success_ends_the_push(
    queue: MemoryPushQueue, pusher: ScriptedPusher, clock: ManualClock
) -> None:
    w = worker(queue, pusher, clock, PushSchedule())
    mo_id = queue.add(ALICE, GOOD, clock.now(), "好的")
    assert await w.run_due() == 1
    assert queue.rows[mo_id].state is PushState.SUCCEEDED
    assert pusher.calls == [(clock.now(), GOOD, "好的")]
    clock.advance(HOUR)
    assert await w.run_due() == 0


async def test_a_pusher_exception_is_a_failed_attempt(
    queue: MemoryPushQueue, pusher: ScriptedPusher, clock: ManualClock
) -> None:
    async def broken() -> tuple[int | None, str | None]:
        raise RuntimeError("bug")

    pusher.answers[GOOD] = broken
    w = worker(queue, pusher, clock, PushSchedule())
    mo_id = queue.add(ALICE, GOOD, clock.now())
    await w.run_due()
    assert queue.rows[mo_id].state is PushState.PENDING
    assert queue.attempts[0].error == "no answer: timeout or connection error"


# -- circuit: exactly 10, the window's edge, successes, pauses ---------------------------


async def test_exactly_ten_failures_pause_nine_do_not(
    queue: MemoryPushQueue, pusher: ScriptedPusher, clock: ManualClock
) -> None:
    w = worker(queue, pusher, clock)
    await fail_n(queue, w, clock, 9)
    assert queue.circuits.get(ALICE, CircuitState()).paused_until is None
    clock.advance(MINUTE)
    await fail_n(queue, w, clock, 1)
    assert queue.circuits[ALICE] == CircuitState(clock.now() + timedelta(hours=1), clock.now())


async def test_failures_spread_across_the_hour_boundary(
    queue: MemoryPushQueue, pusher: ScriptedPusher, clock: ManualClock
) -> None:
    w = worker(queue, pusher, clock)
    await fail_n(queue, w, clock, 5)
    clock.advance(HOUR)  # the first five are exactly an hour old: out of the window
    await fail_n(queue, w, clock, 5)
    assert queue.circuits.get(ALICE, CircuitState()).paused_until is None
    clock.advance(HOUR - 0.001)  # the second five are still inside
    await fail_n(queue, w, clock, 5)
    assert queue.circuits[ALICE].paused_until == clock.now() + timedelta(hours=1)


async def test_a_success_in_between_does_not_erase_failures(
    queue: MemoryPushQueue, pusher: ScriptedPusher, clock: ManualClock
) -> None:
    w = worker(queue, pusher, clock)
    await fail_n(queue, w, clock, 9)
    queue.add(ALICE, GOOD, clock.now())  # the same account, answering this time
    assert await w.run_due() == 1
    assert queue.attempts[-1].ok
    clock.advance(MINUTE)
    await fail_n(queue, w, clock, 1)
    assert queue.circuits[ALICE].paused_until == clock.now() + timedelta(hours=1)


async def test_replies_during_a_pause_wait_and_are_not_attempts(
    queue: MemoryPushQueue, pusher: ScriptedPusher, clock: ManualClock
) -> None:
    w = worker(queue, pusher, clock)
    await fail_n(queue, w, clock, 10)
    paused_until = queue.circuits[ALICE].paused_until
    assert paused_until is not None
    waiting = [queue.add(ALICE, GOOD, clock.now()) for _ in range(3)]
    other = queue.add(BOB, GOOD, clock.now())
    assert await w.run_due() == 1  # bob's only: the pause is alice's alone
    assert queue.rows[other].state is PushState.SUCCEEDED
    clock.advance((paused_until - clock.now()).total_seconds() - 0.001)
    assert await w.run_due() == 0
    assert queue.failures(ALICE) == 10  # waiting is not failing
    clock.advance(0.001)  # the pause is over at exactly paused_until
    assert await w.run_due() == 3
    assert [queue.rows[m].state for m in waiting] == [PushState.SUCCEEDED] * 3
    assert [queue.rows[m].attempts for m in waiting] == [1, 1, 1]


async def test_retries_due_during_a_pause_go_out_when_it_ends(
    queue: MemoryPushQueue, pusher: ScriptedPusher, clock: ManualClock
) -> None:
    w = worker(queue, pusher, clock, PushSchedule())
    retried = queue.add(ALICE, BAD, clock.now())
    await w.run_due()  # failure 1 of this reply; its retry is due in a minute
    await fail_n(queue, w, clock, 9)  # pause
    clock.advance(HOUR)
    pusher.answers[BAD] = (200, "0")
    assert await w.run_due() == 10  # its retry and the nine others' first retries
    assert (queue.rows[retried].state, queue.rows[retried].attempts) == (PushState.SUCCEEDED, 2)


async def test_the_failures_behind_a_pause_never_cause_another(
    queue: MemoryPushQueue, pusher: ScriptedPusher, clock: ManualClock
) -> None:
    short = PushSchedule(retry_offsets=(), pause_for=timedelta(minutes=10))
    w = worker(queue, pusher, clock, short)
    await fail_n(queue, w, clock, 10)
    first_pause = queue.circuits[ALICE]
    clock.advance(10 * MINUTE)  # pause over; the ten are still inside the hour
    await fail_n(queue, w, clock, 1)
    assert queue.circuits[ALICE] == first_pause
    await fail_n(queue, w, clock, 9)  # ten new ones: a new pause
    assert queue.circuits[ALICE].paused_until == clock.now() + timedelta(minutes=10)


async def test_failures_in_flight_when_the_pause_began_do_not_extend_it(
    queue: MemoryPushQueue, pusher: ScriptedPusher, clock: ManualClock
) -> None:
    w = worker(queue, pusher, clock)
    await fail_n(queue, w, clock, 10)
    pause = queue.circuits[ALICE]
    # An attempt claimed just before the pause, finishing during it:
    mo_id = queue.add(ALICE, BAD, clock.now())
    queue.circuits[ALICE] = CircuitState()
    [claimed] = queue.claim_pushes("w", 1, clock.now(), clock.now())
    queue.circuits[ALICE] = pause
    clock.advance(MINUTE)
    w._spawn(claimed)
    await w.drain()
    assert queue.rows[mo_id].attempts == 1
    assert queue.circuits[ALICE] == pause


# -- the pool ----------------------------------------------------------------------------


async def test_one_slow_url_never_delays_other_accounts(
    queue: MemoryPushQueue, pusher: ScriptedPusher, clock: ManualClock
) -> None:
    release = asyncio.Event()
    pusher.answers["http://slow/mo"] = hang_until(release)
    w = worker(queue, pusher, clock, PushSchedule(), concurrency=4, per_account=2)
    slow = [queue.add(ALICE, "http://slow/mo", clock.now()) for _ in range(10)]
    fast = queue.add(BOB, GOOD, clock.now())  # arrived last
    assert await w.run_once() == 3  # two of alice's (her share) and bob's
    await eventually(lambda: queue.rows[fast].state is PushState.SUCCEEDED)
    assert await w.run_once() == 0  # alice has her share in flight; nothing else is due
    later = queue.add(BOB, GOOD, clock.now())
    assert await w.run_once() == 1
    release.set()
    await w.drain()
    assert await w.run_due() == 8
    assert queue.rows[later].state is PushState.SUCCEEDED
    assert all(queue.rows[m].state is PushState.SUCCEEDED for m in slow)


async def test_the_pool_is_bounded(
    queue: MemoryPushQueue, pusher: ScriptedPusher, clock: ManualClock
) -> None:
    release = asyncio.Event()
    for account in range(10):
        pusher.answers[f"http://a{account}/"] = hang_until(release)
        queue.add(account, f"http://a{account}/", clock.now())
    w = worker(queue, pusher, clock, concurrency=4)
    assert await w.run_once() == 4
    assert await w.run_once() == 0
    release.set()
    await w.drain()
    assert await w.run_due() == 6


async def test_an_account_without_url_is_settled_without_an_attempt(
    queue: MemoryPushQueue, pusher: ScriptedPusher, clock: ManualClock
) -> None:
    w = worker(queue, pusher, clock)
    mo_id = queue.add(ALICE, None, clock.now())
    assert await w.run_due() == 1
    assert queue.rows[mo_id].state is PushState.FAILED
    assert (pusher.calls, queue.attempts) == ([], [])


# -- start and stop ----------------------------------------------------------------------


async def test_start_releases_claims_of_a_dead_process_and_runs_in_the_background(
    queue: MemoryPushQueue, pusher: ScriptedPusher, clock: ManualClock
) -> None:
    mo_id = queue.add(ALICE, GOOD, clock.now())
    queue.claim_pushes("dead", 10, clock.now(), clock.now())
    w = PushWorker(queue, pusher, clock, PushSettings("w", ONE_SHOT, poll_seconds=0.01))
    await w.start()
    await eventually(lambda: queue.rows[mo_id].state is PushState.SUCCEEDED)
    late = queue.add(ALICE, GOOD, clock.now())
    w.wake()
    await eventually(lambda: queue.rows[late].state is PushState.SUCCEEDED)
    await w.stop()
    assert pusher.closed


async def test_stop_puts_attempts_that_did_not_finish_back_in_the_queue(
    queue: MemoryPushQueue, pusher: ScriptedPusher, clock: ManualClock
) -> None:
    pusher.answers[GOOD] = hang_until(asyncio.Event())
    mo_id = queue.add(ALICE, GOOD, clock.now())
    settings = PushSettings("w", ONE_SHOT, poll_seconds=0.01, stop_grace_seconds=0.05)
    w = PushWorker(queue, pusher, clock, settings)
    await w.start()
    await eventually(lambda: bool(pusher.calls))
    await w.stop()
    row = queue.rows[mo_id]
    assert (row.state, row.claimed_by, row.attempts) == (PushState.PENDING, None, 0)


async def test_attempts_that_end_together_share_a_commit(
    queue: MemoryPushQueue, pusher: ScriptedPusher, clock: ManualClock
) -> None:
    w = worker(queue, pusher, clock, concurrency=32, per_account=32)
    ids = [queue.add(account, GOOD if account % 2 else BAD, clock.now()) for account in range(20)]
    assert await w.run_due() == 20
    assert sum(queue.batches) == 20
    assert len(queue.batches) <= 2
    assert {queue.rows[m].state for m in ids} == {PushState.SUCCEEDED, PushState.FAILED}
