"""Rate state for one process: sliding windows kept in dicts of deques."""

from __future__ import annotations

import threading
from collections import deque

from smsgate.core.frequency import Sent

# Every this many writes, keys whose every entry may be forgotten are dropped: a key per
# username or address ever seen must not stay in memory for ever.
SWEEP_EVERY = 1024


class MemoryCounters:
    """The Counters port for a single node. Forgetting on restart is acceptable here:
    these are abuse limits, not money (money and retry state live in the database)."""

    def __init__(self) -> None:
        self._hits: dict[str, deque[tuple[float, float, int]]] = {}  # (at, forget_at, n)
        self._slots: dict[str, tuple[float, float]] = {}  # (taken at, forget_at)
        self._writes = 0
        self._lock = threading.Lock()  # handlers may call in from worker threads

    def __len__(self) -> int:
        """Keys held (hit windows and slots): what the sweep keeps bounded."""
        with self._lock:
            return len(self._hits) + len(self._slots)

    def hits_since(self, key: str, since: float) -> int:
        with self._lock:
            return sum(n for at, _, n in self._hits.get(key, ()) if at >= since)

    def record(self, key: str, at: float, keep_for: float, count: int = 1) -> None:
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0][1] <= at:
                hits.popleft()
            hits.append((at, at + keep_for, count))
            self._wrote(at)

    def take_slot(self, key: str, at: float, interval: float) -> bool:
        with self._lock:
            last = self._slots.get(key)
            if last is not None and at - last[0] < interval:
                return False
            self._slots[key] = (at, at + interval)
            self._wrote(at)
            return True

    def _wrote(self, now: float) -> None:
        self._writes += 1
        if self._writes % SWEEP_EVERY:
            return
        stale = [k for k, hits in self._hits.items() if all(f <= now for _, f, _ in hits)]
        for key in stale:
            del self._hits[key]
        for key in [k for k, (_, forget_at) in self._slots.items() if forget_at <= now]:
            del self._slots[key]


class MemoryFrequencyState:
    """Per-number send history for one process, rebuilt from the message table on start.

    Entries are plain tuples of floats and strings, which the garbage collector stops
    tracking after it has seen them once: a history of every number seen in a day must
    not lengthen its pauses (a class instance, even a named tuple, stays tracked).
    """

    def __init__(self) -> None:
        # key -> ((at, content digest, forget_at), ...)
        self._history: dict[str, tuple[tuple[float, str, float], ...]] = {}
        self._lock = threading.Lock()

    def history(self, key: str) -> list[Sent]:
        with self._lock:
            entries = self._history.get(key, ())
        return [Sent(at, digest) for at, digest, _ in entries]

    def add(self, key: str, sent: Sent, keep_for: float) -> None:
        entry = (float(sent.at), str(sent.content_digest), float(sent.at + keep_for))
        with self._lock:
            kept = tuple(e for e in self._history.get(key, ()) if e[2] > sent.at)
            self._history[key] = (*kept, entry)

    def remove(self, key: str, sent: Sent) -> None:
        with self._lock:
            entries = self._history.get(key, ())
            for i, (at, digest, _) in enumerate(entries):
                if at == sent.at and digest == sent.content_digest:
                    self._history[key] = entries[:i] + entries[i + 1 :]
                    return
