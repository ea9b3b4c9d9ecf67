"""Anti SMS-bombing: reserve the per-number and per-account caps for a request.

The decision is core.frequency's; this service resolves which limits apply, keeps
the history in the FrequencyState/Counters ports, and gives a reservation back if
the request fails later (for instance on balance), so a refused request uses no cap.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from smsgate import errors
from smsgate.core.frequency import (
    DAY,
    FrequencyLimits,
    Sent,
    check_account_daily,
    check_number,
    content_digest,
    longest_window,
)
from smsgate.ports import Counters, FrequencyState

log = logging.getLogger(__name__)

Limits = dict[str, int | None]


@dataclass(frozen=True, slots=True)
class Reservation:
    account_id: int
    entries: tuple[tuple[str, Sent], ...] = ()
    daily: int = 0
    at: float = 0.0


@dataclass
class FrequencyGuard:
    state: FrequencyState
    counters: Counters
    defaults: FrequencyLimits
    _keep_for: float = field(init=False)

    def __post_init__(self) -> None:
        self._keep_for = max(longest_window(self.defaults), DAY)

    def limits_for(self, account: Limits | None, product: Limits | None) -> FrequencyLimits:
        """Per field, the stricter of what the account and the product set, else the default."""

        def pick(name: str, default: int | None) -> int | None:
            set_values = [
                v for v in ((account or {}).get(name), (product or {}).get(name)) if v is not None
            ]
            return min(set_values) if set_values else default

        daily_cap = (account or {}).get("daily_cap")
        return replace(
            self.defaults,
            per_minute=pick("freq_per_minute", self.defaults.per_minute),
            per_hour=pick("freq_per_hour", self.defaults.per_hour),
            per_day=pick("freq_per_day", self.defaults.per_day),
            daily_account_cap=self.defaults.daily_account_cap if daily_cap is None else daily_cap,
        )

    def reserve(
        self,
        account_id: int,
        phones: Sequence[str],
        content: str,
        limits: FrequencyLimits,
        now: datetime,
    ) -> Reservation:
        """Count this send against every cap, or refuse it having counted nothing.

        The send is added first and checked against what came before it, in one atomic
        step per kind of counter: of two requests racing on two nodes, the later one sees
        the earlier (checking first and adding after would let both through).
        """
        at = now.timestamp()
        digest = content_digest(content)
        sent = Sent(at, digest)
        keys = [_key(account_id, phone) for phone in phones]
        befores = self.state.append(keys, sent, self._keep_for)
        for phone, before in zip(phones, befores, strict=True):
            reason = check_number(before, digest, at, limits)
            if reason is not None:
                self.state.discard(keys, sent)
                raise errors.Rejected(errors.FREQUENCY_LIMIT, f"{phone}: {reason}")
        daily = 0
        if limits.daily_account_cap is not None:
            daily = len(phones)
            key = _daily_key(account_id)
            today = self.counters.count_and_record([key], at - DAY, at, DAY, daily)[0]
            if not check_account_daily(today, daily, limits):
                self.counters.record(key, at, DAY, -daily)
                self.state.discard(keys, sent)
                log.warning(
                    "ALERT account %d reached its daily cap of %d messages; refusing more",
                    account_id,
                    limits.daily_account_cap,
                )
                raise errors.Rejected(errors.FREQUENCY_LIMIT, "daily account cap reached")
        return Reservation(account_id, tuple((key, sent) for key in keys), daily, at)

    def release(self, reservation: Reservation) -> None:
        if reservation.entries:
            sent = reservation.entries[0][1]  # one send, the same in every entry
            self.state.discard([key for key, _ in reservation.entries], sent)
        if reservation.daily:
            self.counters.record(
                _daily_key(reservation.account_id), reservation.at, DAY, -reservation.daily
            )

    def rebuild(self, sends: Iterable[tuple[int, str, str, datetime]]) -> int:
        """Replay recent accepted messages after a start, so caps survive a restart."""
        count = 0
        for account_id, phone, content, at in sends:
            when = at.timestamp()
            self.state.add(
                _key(account_id, phone), Sent(when, content_digest(content)), self._keep_for
            )
            self.counters.record(_daily_key(account_id), when, DAY)
            count += 1
        return count

    @property
    def keep_for(self) -> float:
        return self._keep_for


def _key(account_id: int, phone: str) -> str:
    return f"{account_id}:{phone}"


def _daily_key(account_id: int) -> str:
    return f"daily:{account_id}"
