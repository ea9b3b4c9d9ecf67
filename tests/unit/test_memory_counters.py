"""The in-process rate state keeps nothing the garbage collector must walk, and drops
keys it will never need again (a million distinct keys come and go without growth)."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable

from smsgate.core.frequency import Sent, content_digest
from smsgate.counters.memory import SWEEP_FLOOR, MemoryCounters, MemoryFrequencyState, _cost


def test_history_entries_are_not_tracked_by_the_collector() -> None:
    state = MemoryFrequencyState()
    for n in range(1000):
        state.add(f"1:139{n:08d}", Sent(1_000.0 + n, "d" * 64), keep_for=86_400.0)
    state.add("1:13900000000", Sent(5_000.0, "e" * 64), keep_for=86_400.0)
    gc.collect()
    gc.collect()  # an outer tuple is untracked once the tuples inside it are
    entries = list(state._history.values())  # packed bytes hold no references
    assert len(entries) == 1000
    assert not any(gc.is_tracked(entry) for entry in entries)
    assert state.history("1:13900000000") == [
        Sent(1_000.0, "d" * 64),
        Sent(5_000.0, "e" * 64),
    ]


def test_remove_takes_back_exactly_one_send() -> None:
    state = MemoryFrequencyState()
    first, second = Sent(10.0, "a"), Sent(20.0, "b")
    state.add("k", first, keep_for=100.0)
    state.add("k", second, keep_for=100.0)
    state.remove("k", first)
    assert state.history("k") == [second]
    state.remove("k", first)  # not there any more: nothing changes
    assert state.history("k") == [second]


def test_entries_past_their_time_are_dropped_on_the_next_add() -> None:
    state = MemoryFrequencyState()
    state.add("k", Sent(0.0, "a"), keep_for=10.0)
    state.add("k", Sent(11.0, "b"), keep_for=10.0)
    assert state.history("k") == [Sent(11.0, "b")]


MILLION = 1_000_000
LIVE = 10_000  # distinct keys alive at any moment: each lives 10 s, 1000 new keys a second


def _traced_peak(fill: Callable[[], None]) -> int:
    """Bytes allocated by ``fill`` at its peak."""
    tracemalloc.start()
    try:
        fill()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_million_one_off_keys_come_and_go_in_the_counters() -> None:
    """One-off IPs (login failures) and /query slots: the dicts do not grow with them."""
    counters = MemoryCounters()
    sizes = []
    for n in range(MILLION):
        at = n / 1000
        counters.record(f"ip:{n}", at, keep_for=10.0)
        counters.take_slot(f"query:{n}", at, interval=10.0)
        if n % 100_000 == 99_999:
            sizes.append(counters.sizes())
    assert all(s["hits"] <= 2 * LIVE + SWEEP_FLOOR for s in sizes), sizes
    assert all(s["slots"] <= 2 * LIVE + SWEEP_FLOOR for s in sizes), sizes
    assert counters.hits_since("ip:999999", 0.0) == 1  # the live ones are still counted
    assert not counters.take_slot("query:999999", 999.999, interval=10.0)


def test_a_million_numbers_come_and_go_in_the_frequency_history() -> None:
    state = MemoryFrequencyState()
    sizes = []
    for n in range(MILLION):
        state.add(f"1:1{n:010d}", Sent(n / 1000, "d"), keep_for=10.0)
        if n % 100_000 == 99_999:
            sizes.append(state.size())
    assert max(sizes) <= 2 * LIVE + SWEEP_FLOOR, sizes
    assert state.history(f"1:1{MILLION - 1:010d}") == [Sent((MILLION - 1) / 1000, "d")]


def test_memory_stays_flat_while_keys_churn() -> None:
    """tracemalloc: four times the keys need no more memory at the peak than the first lot."""
    state = MemoryFrequencyState()
    counters = MemoryCounters()

    def churn(start: int, count: int) -> Callable[[], None]:
        def fill() -> None:
            for n in range(start, start + count):
                at = n / 1000
                state.add(f"1:1{n:010d}", Sent(at, "d"), keep_for=10.0)
                counters.record(f"ip:{n}", at, keep_for=10.0)

        return fill

    churn(0, 20_000)()  # warm up to the steady state
    first = _traced_peak(churn(20_000, 20_000))
    later = _traced_peak(churn(40_000, 80_000))
    assert later < 1.5 * first, (first, later)


def test_live_keys_are_never_swept() -> None:
    counters = MemoryCounters()
    for n in range(5 * SWEEP_FLOOR):
        counters.record(f"long:{n}", 0.0, keep_for=1e9)
    assert counters.sizes()["hits"] == 5 * SWEEP_FLOOR
    assert all(counters.hits_since(f"long:{n}", 0.0) == 1 for n in range(5 * SWEEP_FLOOR))


def test_a_day_of_distinct_numbers_costs_under_250_bytes_each() -> None:
    """Every number sent to in a day stays in the history for that day: keep it small."""
    state = MemoryFrequencyState()
    digest = content_digest("【短信宝】您的验证码是1234")
    numbers = 50_000

    def fill() -> None:
        for n in range(numbers):
            state.add(f"7:139{n:08d}", Sent(1_700_000_000.0 + n, digest), keep_for=86_400.0)

    assert _traced_peak(fill) / numbers < 250
    assert state.history("7:13900000001") == [Sent(1_700_000_001.0, digest)]


def test_the_footprint_follows_what_the_history_really_takes() -> None:
    """/metrics reports the history's size: it must track tracemalloc's count closely, as
    numbers come, as their entries grow and as sends are taken back."""
    state = MemoryFrequencyState()
    digest = content_digest("【短信宝】您的验证码是1234")
    numbers = 20_000

    def fill() -> None:
        for n in range(numbers):
            state.add(f"7:139{n:08d}", Sent(1_700_000_000.0 + n, digest), keep_for=86_400.0)
        for n in range(0, numbers, 2):  # a second send to half of them
            state.add(f"7:139{n:08d}", Sent(1_700_050_000.0 + n, digest), keep_for=86_400.0)

    traced = _traced_peak(fill)
    count, footprint = state.footprint()
    assert count == numbers
    assert 0.75 < footprint / traced < 1.25
    before = footprint
    state.remove("7:13900000000", Sent(1_700_050_000.0, digest))
    assert state.footprint()[1] < before
    assert state.history("7:13900000000") == [Sent(1_700_000_000.0, digest)]


def test_the_footprint_shrinks_when_old_numbers_are_swept() -> None:
    state = MemoryFrequencyState()
    for n in range(5_000):
        state.add(f"1:{n}", Sent(float(n), "d"), keep_for=10.0)
    grown = state.footprint()[1]
    for n in range(5_000):  # a day later: the first lot is forgotten as the second comes
        state.add(f"2:{n}", Sent(100_000.0 + n, "d"), keep_for=10.0)
    count, footprint = state.footprint()
    assert count < 10_000
    assert footprint < 2 * grown
    assert footprint == sum(
        _cost(k, v)
        for k, v in state._history.items()  # the running total equals a fresh count
    )
