"""What the gateway reports about itself (`/metrics`, `/readyz`): plain values, no I/O.

``Tally`` is the hot path's counter: a dict of integers bumped from the event loop's
thread, with no lock and no label look-up; the exporter reads it when scraped. Its keys
come from fixed sets (endpoint names, wire codes, outcome kinds), never from input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K")


class Tally(Generic[K]):
    """Counts by key; ``add`` is one dict operation."""

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts: dict[K, int] = {}

    def add(self, key: K, n: int = 1) -> None:
        self._counts[key] = self._counts.get(key, 0) + n

    def items(self) -> Iterator[tuple[K, int]]:
        return iter(list(self._counts.items()))  # a copy: safe while the loop adds

    def get(self, key: K) -> int:
        return self._counts.get(key, 0)


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """The database's view, shared by every node (read when scraped, then cached)."""

    queue_depth: int  # messages waiting in the outbox for a carrier
    messages_by_state: dict[str, int] = field(default_factory=dict)  # created within a day
    pushes_pending: int = 0
    paused_accounts: int = 0  # accounts whose reply pushes are paused now


# A carrier's ``state``: its link is up in these; in NOT_STARTED it was never started (or
# its configuration is broken); anything else is a link that is down or coming up.
UP_STATES = frozenset({"started", "connected", "bound", "ready", "up"})
NOT_STARTED = frozenset({"stopped", "broken", "starting"})


def carriers_not_started(statuses: Mapping[str, Mapping[str, object]]) -> dict[str, str]:
    """The carriers that did not start, with their state (`/readyz` is 503 for these)."""
    return _in_state(statuses, lambda state: state in NOT_STARTED)


def links_down(statuses: Mapping[str, Mapping[str, object]]) -> dict[str, str]:
    """Started carriers whose link is not up: reported, but the node still accepts."""
    return _in_state(statuses, lambda state: state not in UP_STATES | NOT_STARTED)


def _in_state(
    statuses: Mapping[str, Mapping[str, object]], wanted: Callable[[str], bool]
) -> dict[str, str]:
    return {
        name: state
        for name, status in statuses.items()
        if wanted(state := str(status.get("state", "unknown")))
    }
