"""Rate state for one process: sliding windows kept in dicts of deques."""

from __future__ import annotations

import threading
from collections import deque


class MemoryCounters:
    """The Counters port for a single node. Forgetting on restart is acceptable here:
    these are abuse limits, not money (money and retry state live in the database)."""

    def __init__(self) -> None:
        self._hits: dict[str, deque[tuple[float, float]]] = {}  # key -> (at, forget_at)
        self._slots: dict[str, float] = {}
        self._lock = threading.Lock()  # handlers may call in from worker threads

    def hits_since(self, key: str, since: float) -> int:
        with self._lock:
            return sum(1 for at, _ in self._hits.get(key, ()) if at >= since)

    def record(self, key: str, at: float, keep_for: float) -> None:
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0][1] <= at:
                hits.popleft()
            hits.append((at, at + keep_for))

    def take_slot(self, key: str, at: float, interval: float) -> bool:
        with self._lock:
            last = self._slots.get(key)
            if last is not None and at - last < interval:
                return False
            self._slots[key] = at
            return True
