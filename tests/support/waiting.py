"""The one way tests wait for something that happens in another thread or process."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    probe: Callable[[], T],
    done: Callable[[T], object] = bool,
    timeout: float = 2.0,
    interval: float = 0.1,
) -> T:
    """Call `probe` until `done(result)` holds or `timeout` s have passed; the last result.

    It never fails by itself: the caller asserts on what it returns, so a timeout shows
    the last value seen (``assert wait_for(...), "what was awaited"``).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if done(result) or time.monotonic() >= deadline:
            return result
        time.sleep(interval)
