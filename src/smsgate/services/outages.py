"""Telling operators about an outage (a database or Redis not answering) without a log
line per refused request: one when it starts, then one a minute while it lasts."""

from __future__ import annotations

import logging
import time

from smsgate import errors

log = logging.getLogger("smsgate.outage")

EVERY = 60.0  # seconds between two lines about the same service


class OutageLog:
    """One ERROR line when a service stops answering, then one a minute while it stays
    down (with the count of requests refused meanwhile), instead of one per request."""

    def __init__(self, every: float = EVERY) -> None:
        self._every = every
        self._last: dict[str, float] = {}
        self._refused: dict[str, int] = {}

    def seen(self, outage: errors.Unavailable) -> None:
        now = time.monotonic()
        service = outage.service
        self._refused[service] = self._refused.get(service, 0) + 1
        last = self._last.get(service)
        if last is not None and now - last < self._every:
            return
        self._last[service] = now
        log.error(
            "%s does not answer (%s): %d request(s) refused since the last report",
            service,
            outage.reason,
            self._refused.pop(service),
        )
