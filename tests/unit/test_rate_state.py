"""The Counters and FrequencyState contract, held by the in-process and the Redis versions
alike (the Redis variants run when SMSGATE_TEST_REDIS_URL is set), and the caps they back
holding under concurrent requests."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from smsgate import errors
from smsgate.core.frequency import FrequencyLimits, Sent
from smsgate.counters.memory import MemoryCounters, MemoryFrequencyState
from smsgate.counters.redis import Link, RedisCounters, RedisFrequencyState
from smsgate.ports import Counters, FrequencyState
from smsgate.services.frequency import FrequencyGuard
from tests.support.redis_state import REDIS_SKIP_REASON, REDIS_URL, redis_prefix

NOW = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


def test_hits_are_counted_from_since_and_taken_back(counters: Counters) -> None:
    counters.record("k", 10.0, keep_for=100.0)
    counters.record("k", 20.0, keep_for=100.0, count=3)
    assert counters.hits_since("k", 0.0) == 4
    assert counters.hits_since("k", 20.0) == 3  # at or after
    assert counters.hits_since("k", 20.5) == 0
    counters.record("k", 20.0, keep_for=100.0, count=-3)
    assert counters.hits_since("k", 0.0) == 1
    assert counters.hits_since("other", 0.0) == 0


def test_hits_are_forgotten_keep_for_later(counters: Counters) -> None:
    counters.record("k", 0.0, keep_for=10.0)
    counters.record("k", 10.0, keep_for=10.0)  # the first is forgotten exactly now
    assert counters.hits_since("k", -1.0) == 1


def test_count_and_record_answers_the_count_before(counters: Counters) -> None:
    assert counters.count_and_record(["a", "b"], 0.0, 5.0, 100.0) == [0, 0]
    assert counters.count_and_record(["a", "b"], 0.0, 6.0, 100.0, count=2) == [1, 1]
    assert counters.count_and_record(["a", "c"], 0.0, 7.0, 100.0, count=0) == [3, 0]
    assert counters.count_and_record(["a"], 6.0, 7.0, 100.0, count=0) == [2]  # since 6.0
    assert counters.hits_since("c", 0.0) == 0  # a count of 0 records nothing


def test_a_slot_is_taken_once_per_interval(counters: Counters) -> None:
    assert counters.take_slot("q", 100.0, interval=60.0)
    assert not counters.take_slot("q", 159.9, interval=60.0)
    assert counters.take_slot("q", 160.0, interval=60.0)  # exactly one interval later
    assert not counters.take_slot("q", 160.0, interval=60.0)
    assert counters.take_slot("other", 160.0, interval=60.0)


def test_append_answers_each_history_before_the_send(frequency_state: FrequencyState) -> None:
    first, second = Sent(10.0, "a"), Sent(20.0, "b")
    assert frequency_state.append(["1:x", "1:y"], first, 100.0) == [[], []]
    assert frequency_state.append(["1:x", "1:z"], second, 100.0) == [[first], []]
    assert sorted(frequency_state.history("1:x"), key=lambda s: s.at) == [first, second]
    frequency_state.discard(["1:x", "1:z"], second)
    assert frequency_state.history("1:x") == [first]
    assert frequency_state.history("1:z") == []


def test_remove_takes_back_exactly_one_of_two_equal_sends(
    frequency_state: FrequencyState,
) -> None:
    sent = Sent(10.0, "a")
    frequency_state.add("k", sent, keep_for=100.0)
    frequency_state.add("k", sent, keep_for=100.0)
    frequency_state.remove("k", sent)
    assert frequency_state.history("k") == [sent]
    frequency_state.remove("k", Sent(11.0, "a"))  # not there: nothing changes
    assert frequency_state.history("k") == [sent]


def test_sends_past_their_time_go_on_the_next_add(frequency_state: FrequencyState) -> None:
    frequency_state.add("k", Sent(0.0, "a"), keep_for=10.0)
    frequency_state.add("k", Sent(0.5, "c"), keep_for=10.0)
    assert frequency_state.append(["k"], Sent(10.0, "b"), 10.0) == [[Sent(0.5, "c")]]
    assert frequency_state.history("k") == [Sent(0.5, "c"), Sent(10.0, "b")]


def _guard(state: FrequencyState, counters: Counters, **limits: int | None) -> FrequencyGuard:
    return FrequencyGuard(state, counters, FrequencyLimits(**limits))  # type: ignore[arg-type]


def _accepted(guards: list[FrequencyGuard], requests: list[tuple[str, str]]) -> int:
    """Send ``requests`` (phone, content) at once, spread over ``guards``; how many passed."""

    def one(i: int) -> errors.ErrorCode | None:
        guard = guards[i % len(guards)]
        phone, content = requests[i]
        try:
            guard.reserve(1, [phone], content, guard.defaults, NOW)
        except errors.Rejected as rejected:
            return rejected.code
        return None

    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(one, range(len(requests))))
    assert set(codes) <= {None, errors.FREQUENCY_LIMIT}
    return codes.count(None)


def test_forty_concurrent_sends_to_one_number_pass_the_cap_once(
    rate_state: tuple[FrequencyState, Counters],
) -> None:
    guard = _guard(*rate_state, per_minute=1)
    requests = [("13800138000", f"code {n}") for n in range(40)]
    assert _accepted([guard], requests) == 1
    assert len(rate_state[0].history("1:13800138000")) == 1  # the refused left nothing


def test_concurrent_sends_keep_the_daily_account_cap(
    rate_state: tuple[FrequencyState, Counters],
) -> None:
    guard = _guard(*rate_state, per_minute=None, daily_account_cap=7)
    requests = [(f"1380013{n:04d}", "hello") for n in range(30)]
    assert _accepted([guard], requests) == 7
    assert rate_state[1].hits_since("daily:1", 0.0) == 7


def test_a_release_gives_the_cap_back(rate_state: tuple[FrequencyState, Counters]) -> None:
    guard = _guard(*rate_state, per_minute=1, daily_account_cap=1)
    reservation = guard.reserve(1, ["13800138000"], "a", guard.defaults, NOW)
    with pytest.raises(errors.Rejected):
        guard.reserve(1, ["13800138001"], "b", guard.defaults, NOW)
    guard.release(reservation)
    guard.reserve(1, ["13800138000"], "c", guard.defaults, NOW)


@pytest.fixture
def two_nodes() -> object:
    """Two nodes' Redis state: separate clients and scripts on one key prefix."""
    if not REDIS_URL:
        pytest.skip(REDIS_SKIP_REASON)
    with redis_prefix() as (client, prefix):
        other = type(client).from_url(REDIS_URL, decode_responses=True)
        try:
            yield [
                (RedisFrequencyState(Link(c), prefix), RedisCounters(Link(c), prefix))
                for c in (client, other)
            ]
        finally:
            other.close()


def test_two_nodes_on_redis_share_the_caps(
    two_nodes: list[tuple[RedisFrequencyState, RedisCounters]],
) -> None:
    guards = [_guard(*node, per_minute=1) for node in two_nodes]
    requests = [("13900139000", f"code {n}") for n in range(40)]
    assert _accepted(guards, requests) == 1
    assert two_nodes[1][1].take_slot("query:1", 5.0, 60.0)
    assert not two_nodes[0][1].take_slot("query:1", 6.0, 60.0)


@pytest.mark.parametrize("seed", [16, 17, 18])
def test_redis_answers_as_memory_does(
    two_nodes: list[tuple[RedisFrequencyState, RedisCounters]], seed: int
) -> None:
    """Random operations, the same answers from both versions (a history is a multiset:
    entries of one instant may come back in another order)."""
    redis_state, redis_counters = two_nodes[0]
    memory_state, memory_counters = MemoryFrequencyState(), MemoryCounters()
    rng = random.Random(seed)
    at = 0.0
    for _ in range(400):
        at += rng.choice([0.0, 0.5, 3.0, 9.5, 10.0])
        key = rng.choice("abc")
        since = at - rng.choice([0.0, 5.0, 10.0, 30.0])
        op = rng.randrange(5)
        if op == 0:
            n = rng.choice([1, 2, -1, 0])
            args = ([key, "d"], since, at, 10.0, n)
            assert redis_counters.count_and_record(*args) == memory_counters.count_and_record(*args)
        elif op == 1:
            assert redis_counters.hits_since(key, since) == memory_counters.hits_since(key, since)
        elif op == 2:
            interval = rng.choice([5.0, 10.0])
            assert redis_counters.take_slot(key, at, interval) == memory_counters.take_slot(
                key, at, interval
            )
        elif op == 3:
            sent = Sent(at, rng.choice("xy"))
            got = redis_state.append([key], sent, 10.0)
            assert [_ordered(h) for h in got] == [
                _ordered(h) for h in memory_state.append([key], sent, 10.0)
            ]
        else:
            sent = Sent(at - rng.choice([0.0, 0.5, 3.0]), rng.choice("xy"))
            redis_state.discard([key], sent)
            memory_state.discard([key], sent)
            assert _ordered(redis_state.history(key)) == _ordered(memory_state.history(key))


def _ordered(history: list[Sent]) -> list[Sent]:
    return sorted(history, key=lambda s: (s.at, s.content_digest))
