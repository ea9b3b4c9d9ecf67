"""Rate state for one process: sliding windows kept in dicts of deques.

Every entry knows when it can be forgotten. Keys seen once (a one-off IP, a number never
sent to again) are swept: when a dict has doubled since its last sweep, the keys whose
entries are all past their time go. A sweep costs one pass, paid for by the inserts that
doubled the dict (amortised O(1) per call); a dict holds at most about twice its live keys.
A key's entries share one keep-for (one window per kind of key), so its newest entry is
the last to be forgotten: a key is stale when that one is.
"""

from __future__ import annotations

import struct
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from smsgate.core.frequency import Sent

SWEEP_FLOOR = 1024  # below this many keys, never sweep
# What a dict entry costs beside its key and value: hash, key and value pointers, at the
# table's usual fill (a dict keeps a third or more of its slots free) plus its index.
DICT_ENTRY = 40


class _Sweeper:
    """When to sweep one dict: once it has doubled since the last sweep."""

    __slots__ = ("_next",)

    def __init__(self) -> None:
        self._next = SWEEP_FLOOR

    def maybe(self, table: dict[Any, Any], stale: Callable[[Any], bool]) -> bool:
        """Drop the keys whose value is ``stale``, if the dict has grown enough; whether
        it swept."""
        if len(table) < self._next:
            return False
        for key in [k for k, v in table.items() if stale(v)]:
            del table[key]
        self._next = max(SWEEP_FLOOR, 2 * len(table))
        return True


class MemoryCounters:
    """The Counters port for a single node. Forgetting on restart is acceptable here:
    these are abuse limits, not money (money and retry state live in the database)."""

    def __init__(self) -> None:
        self._hits: dict[str, deque[tuple[float, float, int]]] = {}  # (at, forget_at, n)
        self._slots: dict[str, tuple[float, float]] = {}  # (taken at, forget_at)
        self._lock = threading.Lock()  # handlers may call in from worker threads
        self._hits_sweep = _Sweeper()
        self._slots_sweep = _Sweeper()

    def hits_since(self, key: str, since: float) -> int:
        with self._lock:
            return self._hits_since(key, since)

    def record(self, key: str, at: float, keep_for: float, count: int = 1) -> None:
        with self._lock:
            self._prune(key, at)
            self._hits[key].append((at, at + keep_for, count))

    def count_and_record(
        self, keys: Sequence[str], since: float, at: float, keep_for: float, count: int = 1
    ) -> list[int]:
        with self._lock:
            totals = []
            for key in keys:
                if count:
                    self._prune(key, at)
                totals.append(self._hits_since(key, since))
                if count:
                    self._hits[key].append((at, at + keep_for, count))
            return totals

    def _hits_since(self, key: str, since: float) -> int:
        return sum(n for at, _, n in self._hits.get(key, ()) if at >= since)

    def _prune(self, key: str, at: float) -> None:
        """Drop the entries of ``key`` forgotten by ``at`` (making the key if new)."""
        hits = self._hits.get(key)
        if hits is None:
            self._hits_sweep.maybe(self._hits, lambda h: not h or h[-1][1] <= at)
            hits = self._hits[key] = deque()
        while hits and hits[0][1] <= at:
            hits.popleft()

    def take_slot(self, key: str, at: float, interval: float) -> bool:
        with self._lock:
            last = self._slots.get(key)
            if last is not None and at - last[0] < interval:
                return False
            if last is None:
                self._slots_sweep.maybe(self._slots, lambda s: s[1] <= at)
            self._slots[key] = (at, at + interval)
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._hits) + len(self._slots)

    def sizes(self) -> dict[str, int]:
        """How many keys each table holds (for tests and diagnostics)."""
        with self._lock:
            return {"hits": len(self._hits), "slots": len(self._slots)}


class MemoryFrequencyState:
    """Per-number send history for one process, rebuilt from the message table on start.

    A number's history is one ``bytes`` value, its entries packed back to back: it keeps
    for a day (the longest cap window), so every distinct number of the day costs memory,
    and packing makes that about 170 bytes rather than 320 with tuples of floats and
    strings. ``bytes`` also holds no references, so the garbage collector never walks
    a day of history and its pauses do not lengthen with it.
    """

    shared = False  # gone with the process: rebuilt from the message table on start

    def __init__(self) -> None:
        self._history: dict[str, bytes] = {}  # key -> packed (at, forget_at, digest)...
        self._lock = threading.Lock()
        self._sweep = _Sweeper()
        self._bytes = 0  # the history's memory, kept up to date (see footprint)

    def history(self, key: str) -> list[Sent]:
        with self._lock:
            packed = self._history.get(key, b"")
        return [Sent(at, digest) for at, _, digest in _unpack(packed)]

    def add(self, key: str, sent: Sent, keep_for: float) -> None:
        self.append([key], sent, keep_for)

    def append(self, keys: Sequence[str], sent: Sent, keep_for: float) -> list[list[Sent]]:
        at = float(sent.at)
        entry = _pack_one(at, at + keep_for, sent.content_digest)
        befores: list[list[tuple[float, float, str]]] = []
        with self._lock:
            for key in keys:
                packed = self._history.get(key)
                if packed is None:
                    if self._sweep.maybe(self._history, lambda p: not p or _last_forget(p) <= at):
                        self._bytes = sum(_cost(k, v) for k, v in self._history.items())
                    befores.append([])
                    self._history[key] = entry
                    self._bytes += _cost(key, entry)
                    continue
                kept = [(a, forget, d) for a, forget, d in _unpack(packed) if forget > at]
                befores.append(kept)
                self._replace(key, packed, b"".join(_pack_one(*e) for e in kept) + entry)
        return [[Sent(a, d) for a, _, d in kept] for kept in befores]

    def remove(self, key: str, sent: Sent) -> None:
        self.discard([key], sent)

    def discard(self, keys: Sequence[str], sent: Sent) -> None:
        with self._lock:
            for key in keys:
                packed = self._history.get(key, b"")
                entries = _unpack(packed)
                for i, (at, _, digest) in enumerate(entries):
                    if at == sent.at and digest == sent.content_digest:
                        del entries[i]
                        self._replace(key, packed, b"".join(_pack_one(*e) for e in entries))
                        break

    def _replace(self, key: str, old: bytes, new: bytes) -> None:
        self._history[key] = new
        self._bytes += sys.getsizeof(new) - sys.getsizeof(old)

    def footprint(self) -> tuple[int, int]:
        """(numbers remembered, bytes they take): the history is the one part of a node's
        memory that grows with traffic (for a day), so /metrics shows it."""
        with self._lock:
            return len(self._history), self._bytes

    def size(self) -> int:
        """How many keys the history holds (for tests and diagnostics)."""
        with self._lock:
            return len(self._history)


def _cost(key: str, packed: bytes) -> int:
    """Bytes one history entry takes: its key, its value and its place in the dict."""
    return sys.getsizeof(key) + sys.getsizeof(packed) + DICT_ENTRY


# One history entry: at, forget_at (float64), the digest's length (uint8), the digest.
_ENTRY_HEAD = struct.Struct("<ddB")


def _pack_one(at: float, forget_at: float, digest: str) -> bytes:
    raw = digest.encode()
    return _ENTRY_HEAD.pack(at, forget_at, len(raw)) + raw


def _unpack(packed: bytes) -> list[tuple[float, float, str]]:
    entries = []
    offset = 0
    while offset < len(packed):
        at, forget_at, size = _ENTRY_HEAD.unpack_from(packed, offset)
        offset += _ENTRY_HEAD.size
        entries.append((at, forget_at, packed[offset : offset + size].decode()))
        offset += size
    return entries


def _last_forget(packed: bytes) -> float:
    """forget_at of the newest entry: a key's entries share one keep-for, so the last."""
    return _unpack(packed)[-1][1]
