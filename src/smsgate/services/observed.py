"""Counting what the push worker does, for `/metrics`, without touching its logic."""

from __future__ import annotations

from smsgate import errors
from smsgate.core.observed import Tally
from smsgate.ports import Pusher


class CountingPusher:
    """A Pusher that counts each attempt's outcome: 2xx..5xx, none (no answer), refused."""

    def __init__(self, inner: Pusher, outcomes: Tally[str]) -> None:
        self._inner = inner
        self._outcomes = outcomes

    async def push(self, url: str, phone: str, content: str) -> tuple[int | None, str | None]:
        try:
            status, body = await self._inner.push(url, phone, content)
        except errors.TargetRefused:
            self._outcomes.add("refused")
            raise
        self._outcomes.add("none" if status is None else f"{status // 100}xx")
        return status, body

    async def close(self) -> None:
        await self._inner.close()
