"""Splitting many numbers into requests of at most 99, and what each request came to.

Pure: the clients' ``send_bulk`` and ``send_batch`` do the sending.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from smsgate.client._core import MAX_NUMBERS, split_phones
from smsgate.client.exceptions import (
    BadPhone,
    ClientError,
    FrequencyLimit,
    OptedOut,
    SendOutcomeUnknown,
)


@dataclass(frozen=True, slots=True)
class Batch:
    """The numbers of one request; ``index`` counts from 0 in the plan."""

    index: int
    phones: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What one request came to: ``error`` is ``None`` when the server answered ``0``."""

    index: int
    phones: tuple[str, ...]
    error: ClientError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def outcome_unknown(self) -> bool:
        """The request may or may not have been accepted (see ``SendOutcomeUnknown``)."""
        return isinstance(self.error, SendOutcomeUnknown)


def unique(phones: str | Iterable[str]) -> list[str]:
    """The numbers without repeats, in first-seen order."""
    return list(dict.fromkeys(split_phones(phones)))


def plan_batches(phones: str | Iterable[str], batch_size: int = MAX_NUMBERS) -> list[Batch]:
    """Distinct numbers, in order, cut into batches of ``batch_size`` (1 to 99)."""
    if not 1 <= batch_size <= MAX_NUMBERS:
        raise ValueError(f"batch_size must be 1 to {MAX_NUMBERS}, not {batch_size}")
    numbers = unique(phones)
    return [
        Batch(index, tuple(numbers[start : start + batch_size]))
        for index, start in enumerate(range(0, len(numbers), batch_size))
    ]


def only_this_batch(error: ClientError) -> bool:
    """Whether the next batches may fare better: the error is about these numbers only.

    Everything else (credentials, balance, content, product, a server that does not answer)
    would fail every following batch the same way.
    """
    return isinstance(error, BadPhone | OptedOut | FrequencyLimit)
