"""The in-process frequency history keeps nothing the garbage collector must walk."""

from __future__ import annotations

import gc

from smsgate.core.frequency import Sent
from smsgate.counters.memory import MemoryFrequencyState


def test_history_entries_are_not_tracked_by_the_collector() -> None:
    state = MemoryFrequencyState()
    for n in range(1000):
        state.add(f"1:139{n:08d}", Sent(1_000.0 + n, "d" * 64), keep_for=86_400.0)
    state.add("1:13900000000", Sent(5_000.0, "e" * 64), keep_for=86_400.0)
    gc.collect()
    gc.collect()  # an outer tuple is untracked once the tuples inside it are
    entries = list(state._history.values())
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
