"""The push worker on a real database (SQLite and PostgreSQL), with the real HTTP pusher
and real receivers on loopback; time is a ManualClock, so the schedule is exact."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from smsgate.core.push_policy import CircuitState, PushSchedule
from smsgate.core.pushes import AttemptRecord, PushAttempt, PushOutcome
from smsgate.core.replies import IncomingReply
from smsgate.core.states import PushState
from smsgate.core.targets import TargetPolicy
from smsgate.pushers.http import HttpPusher
from smsgate.services.admin import AdminService
from smsgate.services.inbound import InboundService
from smsgate.services.push import PushSettings, PushWorker, circuit_after_failure
from smsgate.store.inbound import SqlInboundStore
from smsgate.store.push_queue import SqlPushQueue
from tests.receivers import RECEIVER_TARGETS, Receiver
from tests.support.clock import ManualClock

SCHEDULE = PushSchedule()  # the real numbers: ManualClock makes them free
TRICKY = "回复：好的 😀 a&b=c+d 100% \n第二行\r\n%E4%BD%A0 ?#"


@pytest.fixture
def inbound(replies: SqlInboundStore, clock: ManualClock) -> InboundService:
    return InboundService(replies, clock)


@pytest.fixture
def ok_receiver() -> Iterator[Receiver]:
    with Receiver("0") as receiver:
        yield receiver


class Harness:
    """Accounts, replies and push rounds, the way the server wires them."""

    def __init__(
        self,
        admin: AdminService,
        inbound: InboundService,
        replies: SqlInboundStore,
        clock: ManualClock,
    ) -> None:
        self.admin, self.inbound, self.replies, self.clock = admin, inbound, replies, clock
        self.queue = SqlPushQueue(replies.engine)
        self._codes = iter(range(10, 99))

    def account(self, name: str, url: str | None) -> str:
        code = str(next(self._codes))
        self.admin.create_account(name, "secret-pw")
        self.admin.configure(name, ext_code=code, **({"mo_url": url} if url else {}))
        return code

    def reply(self, code: str, content: str = "好", phone: str = "13800138000") -> int:
        r = IncomingReply("simulator", phone, code, content, self.clock.now())
        return self.inbound.receive(r).id

    def worker(
        self,
        node: str = "w1",
        timeout: float = 2.0,
        targets: TargetPolicy = RECEIVER_TARGETS,
        **kw: object,
    ) -> PushWorker:
        settings = PushSettings(node=node, schedule=kw.pop("schedule", SCHEDULE), **kw)  # type: ignore[arg-type]
        return PushWorker(self.queue, HttpPusher(timeout, targets=targets), self.clock, settings)

    def run_due(self, worker: PushWorker) -> int:
        async def go() -> int:
            try:
                return await worker.run_due()
            finally:
                await worker.stop()

        # A fresh pusher per round: asyncio.run closes the loop its connections used.
        return asyncio.run(go())

    def state(self, mo_id: int) -> tuple[PushState | None, int, int]:
        r = self.inbound.reply(mo_id)
        return r.push_state, r.attempts, r.series


@pytest.fixture
def h(
    admin: AdminService, inbound: InboundService, replies: SqlInboundStore, clock: ManualClock
) -> Harness:
    return Harness(admin, inbound, replies, clock)


def advance_and_run(h: Harness, seconds: float) -> int:
    h.clock.advance(seconds)
    return h.run_due(h.worker())


# -- delivery ----------------------------------------------------------------------------


def test_a_reply_arrives_byte_exact_with_the_urls_own_query(
    h: Harness, ok_receiver: Receiver
) -> None:
    code = h.account("alice", ok_receiver.url("/hook?token=s3cr%2Bt&x="))
    mo_id = h.reply(code, TRICKY, phone="+8613912345678")
    assert h.run_due(h.worker()) == 1
    [hit] = ok_receiver.hits
    assert hit.raw_c == TRICKY.encode("utf-8")
    assert hit.c == TRICKY
    assert hit.m == "13912345678"
    assert hit.params["token"] == "s3cr+t"
    assert hit.params["x"] == ""
    assert h.state(mo_id) == (PushState.SUCCEEDED, 1, 1)
    [attempt] = h.inbound.attempts(mo_id)
    assert (attempt.ok, attempt.status, attempt.body) == (True, 200, "0")


def test_a_push_to_an_address_no_longer_allowed_fails_and_says_why(
    h: Harness, ok_receiver: Receiver
) -> None:
    """Set while loopback was allowed; pushed after the operator narrowed the allow-list."""
    code = h.account("alice", ok_receiver.url())
    mo_id = h.reply(code)
    assert h.run_due(h.worker(targets=TargetPolicy())) == 1
    assert ok_receiver.count() == 0
    [attempt] = h.inbound.attempts(mo_id)
    assert (attempt.ok, attempt.status) == (False, None)
    assert attempt.error == "refused: 127.0.0.1 is loopback"
    assert h.state(mo_id) == (PushState.PENDING, 1, 1)


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ("ok", 200, "HTTP 200 with an answer other than 0 (2 characters)"),
        ("0", 500, "HTTP 500"),
        ("0", 302, "HTTP 302"),
    ],
)
def test_anything_but_2xx_and_0_is_a_failed_attempt(
    h: Harness, body: str, status: int, error: str
) -> None:
    with Receiver(body, status) as receiver:
        code = h.account("alice", receiver.url())
        mo_id = h.reply(code)
        h.run_due(h.worker())
    assert h.state(mo_id) == (PushState.PENDING, 1, 1)
    assert h.inbound.reply(mo_id).last_error == error
    [attempt] = h.inbound.attempts(mo_id)
    assert (attempt.ok, attempt.status, attempt.error) == (False, status, error)


def test_whitespace_around_the_0_is_success(h: Harness) -> None:
    with Receiver(" 0\r\n") as receiver:
        mo_id = h.reply(h.account("alice", receiver.url()))
        h.run_due(h.worker())
    assert h.state(mo_id)[0] is PushState.SUCCEEDED


def test_a_hanging_receiver_times_out(h: Harness) -> None:
    with Receiver("0", hang=3.0) as receiver:
        mo_id = h.reply(h.account("alice", receiver.url()))
        h.run_due(h.worker(timeout=0.3))
    [attempt] = h.inbound.attempts(mo_id)
    assert (attempt.ok, attempt.status) == (False, None)
    assert attempt.error == "no answer: timeout or connection error"


# -- the schedule ------------------------------------------------------------------------


def test_retries_at_1_3_10_minutes_after_the_first_attempt_then_failed(h: Harness) -> None:
    with Receiver("ok") as receiver:
        mo_id = h.reply(h.account("alice", receiver.url()))
        start = h.clock.now()
        assert h.run_due(h.worker()) == 1
        for offset in (60, 180, 600):
            until = start + timedelta(seconds=offset)
            assert advance_and_run(h, (until - h.clock.now()).total_seconds() - 0.001) == 0
            assert advance_and_run(h, 0.001) == 1
        assert advance_and_run(h, 3600) == 0
    attempts = h.inbound.attempts(mo_id)
    assert [(a.at - start).total_seconds() for a in attempts] == [0, 60, 180, 600]
    assert [a.attempt for a in attempts] == [1, 2, 3, 4]
    assert h.state(mo_id) == (PushState.FAILED, 4, 1)
    assert h.inbound.reply(mo_id).done_at == start + timedelta(minutes=10)


def test_a_receiver_that_comes_up_later_gets_the_retry(h: Harness) -> None:
    receiver = Receiver("0")  # not started: the URL is down
    mo_id = h.reply(h.account("alice", receiver.url()))
    assert h.run_due(h.worker()) == 1
    assert h.state(mo_id) == (PushState.PENDING, 1, 1)
    with receiver:
        assert advance_and_run(h, 60) == 1
    assert h.state(mo_id) == (PushState.SUCCEEDED, 2, 1)
    assert len(receiver.hits) == 1


def test_repush_of_a_failed_reply_starts_the_schedule_again(h: Harness) -> None:
    receiver = Receiver("ok")
    with receiver:
        mo_id = h.reply(h.account("alice", receiver.url()))
        for wait in (0, 60, 120, 420):
            advance_and_run(h, wait)
        assert h.state(mo_id) == (PushState.FAILED, 4, 1)
        receiver.body = "0"
        advance_and_run(h, 3600)
        h.inbound.repush(mo_id)
        assert h.run_due(h.worker()) == 1
    assert h.state(mo_id) == (PushState.SUCCEEDED, 1, 2)
    assert [(a.series, a.attempt, a.ok) for a in h.inbound.attempts(mo_id)][-2:] == [
        (1, 4, False),
        (2, 1, True),
    ]


def test_an_account_without_a_url_fails_at_once_without_an_attempt(h: Harness) -> None:
    mo_id = h.reply(h.account("alice", None))
    assert h.run_due(h.worker()) == 1
    assert h.state(mo_id) == (PushState.FAILED, 0, 1)
    assert h.inbound.reply(mo_id).last_error == "the account has no MO URL"
    assert h.inbound.attempts(mo_id) == []
    assert h.replies.circuit(h.admin.show("alice").account.id) == CircuitState()


# -- the circuit -------------------------------------------------------------------------


def test_ten_failures_pause_the_account_and_replies_wait_for_the_end_of_the_pause(
    h: Harness, ok_receiver: Receiver
) -> None:
    with Receiver("0", 500) as broken:
        code = h.account("alice", broken.url())
        other = h.account("bob", ok_receiver.url())
        first = [h.reply(code) for _ in range(3)]
        start = h.clock.now()
        assert h.run_due(h.worker()) == 3  # failures 1-3; then retries at +1 and +3 min
        assert advance_and_run(h, 60) == 3
        assert advance_and_run(h, 120) == 3
        late = h.reply(code, "during the pause?")  # 9 failures so far: not paused yet
        assert advance_and_run(h, 0) == 1  # the 10th failure
        alice = h.admin.show("alice").account.id
        paused = h.replies.circuit(alice)
        tenth = start + timedelta(minutes=3)
        assert paused == CircuitState(tenth + timedelta(hours=1), tenth)
        during = h.reply(code, "arrived during the pause")
        bobs = h.reply(other, "bob is not paused")
        assert advance_and_run(h, 7 * 60) == 1  # only bob: alice's 10-min retries wait
        assert h.state(bobs)[0] is PushState.SUCCEEDED
        assert advance_and_run(h, 53 * 60 - 0.001) == 0  # a hair before the end
        broken.status = 200
        waiting = [*first, late, during]
        assert advance_and_run(h, 0.001) == len(waiting)
    assert [h.state(m)[0] for m in waiting] == [PushState.SUCCEEDED] * len(waiting)
    assert len(broken.hits) == 10 + len(waiting)
    assert h.state(during)[1] == 1  # waiting out the pause was not an attempt


def test_the_pause_and_pending_pushes_survive_a_restart(h: Harness) -> None:
    with Receiver("0", 500) as broken:
        code = h.account("alice", broken.url())
        for _ in range(10):
            h.reply(code)
        assert h.run_due(h.worker(node="before")) == 10
        # A new process: nothing in memory, everything from the database.
        pending = h.reply(code)
        assert advance_and_run(h, 59 * 60) == 0
        broken.status = 200
        assert advance_and_run(h, 60) == 11
    assert h.state(pending) == (PushState.SUCCEEDED, 1, 1)


def test_paused_accounts_lists_a_pause_until_its_end(h: Harness) -> None:
    with Receiver("0", 500) as broken:
        code = h.account("alice", broken.url())
        h.account("bob", broken.url())
        for _ in range(10):
            h.reply(code)
        assert h.run_due(h.worker()) == 10
    alice = h.admin.show("alice").account.id
    end = h.replies.circuit(alice).paused_until
    assert end is not None
    assert h.replies.paused_accounts(h.clock.now()) == [("alice", end)]
    assert h.replies.paused_accounts(end - timedelta(microseconds=1)) == [("alice", end)]
    assert h.replies.paused_accounts(end) == []  # a pause is over at exactly its end


def test_claims_of_a_dead_process_are_released_at_start(
    h: Harness, engine: sa.Engine, ok_receiver: Receiver
) -> None:
    mo_id = h.reply(h.account("alice", ok_receiver.url()))
    now = h.clock.now()
    assert [c.mo_id for c in h.queue.claim_pushes("dead", 10, now, now)] == [mo_id]
    assert h.queue.claim_pushes("other", 10, now, now - timedelta(minutes=2)) == []

    async def restart() -> None:
        worker = h.worker(node="alive")
        await worker.start()  # single node: claims not ours are from a dead process
        await asyncio.sleep(0.5)
        await worker.stop()

    asyncio.run(restart())
    assert h.state(mo_id) == (PushState.SUCCEEDED, 1, 1)


def test_a_claim_older_than_the_lease_is_taken_over(h: Harness, ok_receiver: Receiver) -> None:
    mo_id = h.reply(h.account("alice", ok_receiver.url()))
    now = h.clock.now()
    assert len(h.queue.claim_pushes("dead", 10, now, now)) == 1
    later = now + timedelta(minutes=3)
    claimed = h.queue.claim_pushes("alive", 10, later, later - timedelta(minutes=2))
    assert [c.mo_id for c in claimed] == [mo_id]


# -- concurrency -------------------------------------------------------------------------


def test_concurrent_claimers_never_take_the_same_push(h: Harness) -> None:
    code = h.account("alice", "http://127.0.0.1:9/mo")
    ids = {h.reply(code) for _ in range(60)}
    now = h.clock.now()
    taken: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def claimer(node: str) -> None:
        barrier.wait()
        while claimed := h.queue.claim_pushes(node, 5, now, now - timedelta(minutes=2)):
            with lock:
                taken.extend(c.mo_id for c in claimed)

    threads = [threading.Thread(target=claimer, args=(f"n{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken) == sorted(ids)


def test_concurrent_failures_are_all_counted_by_the_circuit(h: Harness) -> None:
    code = h.account("alice", "http://127.0.0.1:9/mo")
    alice = h.admin.show("alice").account.id
    ids = [h.reply(code) for _ in range(SCHEDULE.pause_after_failures)]
    start = h.clock.now()
    claimed = h.queue.claim_pushes("n", 100, start, start)
    barrier = threading.Barrier(len(claimed))

    def fail(index: int) -> None:
        at = start + timedelta(milliseconds=index)
        push = claimed[index]
        attempt = PushAttempt(push.mo_id, alice, 1, 1, start, at, False, 500, "", "HTTP 500")
        outcome = PushOutcome(PushState.PENDING, 1, start, start + timedelta(minutes=1), "x")
        rule = functools.partial(circuit_after_failure, SCHEDULE)
        barrier.wait()
        record = AttemptRecord(attempt, outcome, rule, at - SCHEDULE.failure_window)
        h.queue.record_attempts("n", [record])

    threads = [threading.Thread(target=fail, args=(i,)) for i in range(len(claimed))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == len(claimed)
    assert h.replies.circuit(alice).paused_until is not None
