"""The balance query (/query): at most once per interval per account."""

from __future__ import annotations

from dataclasses import dataclass

from smsgate import errors
from smsgate.core.accounts import Account
from smsgate.ports import Clock, Counters, Ledger


@dataclass(frozen=True, slots=True)
class Balance:
    sent: int
    remaining: int


class QueryService:
    def __init__(
        self, store: Ledger, counters: Counters, clock: Clock, interval_seconds: float
    ) -> None:
        self._store = store
        self._counters = counters
        self._clock = clock
        self._interval = interval_seconds

    def balance(self, account: Account) -> Balance:
        """The account's units sent and remaining, or 44 when asked again too soon."""
        key = f"query:{account.id}"
        if not self._counters.take_slot(key, self._clock.now().timestamp(), self._interval):
            raise errors.Rejected(errors.QUERY_TOO_FREQUENT)
        sent, remaining = self._store.balance(account.id)
        return Balance(sent=sent, remaining=remaining)
