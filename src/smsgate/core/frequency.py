"""The anti-SMS-bombing policy (per account, per number), as pure decisions.

SMSBao asks clients never to send the same content to the same number repeatedly,
and carriers now enforce rules against SMS bombing; a gateway that lets a leaked
verification form fire a thousand codes at one phone gets its sender blocked. The
counters (in-process or Redis) keep the history; this module only decides.

Conventions:

- windows are rolling, and a send counts inside a window of ``w`` seconds while
  ``now - at < w``: a send exactly 60 s ago is *outside* the one-minute window, so
  "1 per minute" allows one send at t=0 and the next at t=60. A send stamped in the
  future (clock skew between nodes) counts as inside every window: the safe side;
- a cap of ``None`` means unlimited; a cap of ``0`` means no sends at all (a number
  or account can be frozen without a separate switch);
- a window of ``None`` or ``0`` means the rule is off (nothing is ever inside it).
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0
# An hour: long enough to stop a retry loop or a replayed form from repeating the same
# text to one phone, short enough not to block a legitimate reminder sent later in the
# day. Verification codes are unaffected: each carries a new code, so a new digest.
SAME_CONTENT_WINDOW = HOUR


@dataclass(frozen=True, slots=True)
class FrequencyLimits:
    """Caps per number per account over rolling windows, and an optional daily account cap."""

    per_minute: int | None = 1
    per_hour: int | None = 5
    per_day: int | None = 10
    same_content_window: float | None = SAME_CONTENT_WINDOW  # seconds
    daily_account_cap: int | None = None  # messages per account per calendar day

    def __post_init__(self) -> None:
        caps = (self.per_minute, self.per_hour, self.per_day, self.daily_account_cap)
        if any(cap is not None and cap < 0 for cap in caps):
            raise ValueError(f"frequency caps must be >= 0 or None: {self}")
        if self.same_content_window is not None and self.same_content_window < 0:
            raise ValueError(f"same_content_window must be >= 0 or None: {self}")


@dataclass(frozen=True, slots=True)
class Sent:
    """One earlier send to a number: when (epoch seconds) and a digest of what."""

    at: float
    content_digest: str


def content_digest(content: str) -> str:
    """A 64-bit BLAKE2b hex digest of the NFKC form, so full-width and half-width twins
    count as the same. 64 bits tell apart the texts one number is sent in a day with a
    collision chance far below a carrier's error rate, in a third of SHA-256's memory:
    a history entry is kept for every number sent to in a day."""
    normal = unicodedata.normalize("NFKC", content).encode("utf-8")
    return hashlib.blake2b(normal, digest_size=8).hexdigest()


def check_number(
    history: Sequence[Sent], digest: str, now: float, limits: FrequencyLimits
) -> str | None:
    """None when one more send of ``digest`` to this number is allowed, else a short reason.

    The caller turns a reason into ``Rejected(FREQUENCY_LIMIT, reason)``.
    """
    window = limits.same_content_window
    if window and any(s.content_digest == digest and _inside(s, now, window) for s in history):
        return f"same content within {_seconds(window)}s"
    for label, cap, span in _caps(limits):
        if cap is not None and sum(1 for s in history if _inside(s, now, span)) >= cap:
            return f"{label} cap {cap}"
    return None


def prune(history: Sequence[Sent], now: float, limits: FrequencyLimits) -> list[Sent]:
    """The entries that can still affect a decision: inside the longest active window."""
    keep = longest_window(limits)
    return [s for s in history if _inside(s, now, keep)]


def longest_window(limits: FrequencyLimits) -> float:
    """Seconds of history the active rules look at (0 when every rule is off)."""
    spans = [span for _label, cap, span in _caps(limits) if cap is not None]
    return max([*spans, limits.same_content_window or 0.0])


def check_account_daily(count_today: int, n_new: int, limits: FrequencyLimits) -> bool:
    """True when ``n_new`` more messages keep the account within its daily cap."""
    cap = limits.daily_account_cap
    return cap is None or count_today + n_new <= cap


def _caps(limits: FrequencyLimits) -> Iterator[tuple[str, int | None, float]]:
    yield "per-minute", limits.per_minute, MINUTE
    yield "per-hour", limits.per_hour, HOUR
    yield "per-day", limits.per_day, DAY


def _inside(sent: Sent, now: float, window: float) -> bool:
    return now - sent.at < window


def _seconds(window: float) -> str:
    return str(int(window)) if float(window).is_integer() else str(window)
