"""The records that travel the send path, from an accepted request to a delivery report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from smsgate.core.states import MessageState
from smsgate.core.units import request_cost


class Kind(StrEnum):
    SMS = "sms"  # /sms, domestic
    INTL = "intl"  # /wsms, international
    VOICE = "voice"  # /voice, a spoken verification code


@dataclass(frozen=True, slots=True)
class Charge:
    """What one accepted request writes: a debit, a batch and one message per number."""

    account_id: int
    product_id: str
    kind: Kind
    phones: tuple[str, ...]
    content: str
    units: int  # per message
    price: int  # units charged per message unit
    carrier: str
    client_ip: str
    at: datetime
    # CMPP Msg_Ids under which the customer is owed a status report of every message,
    # written in the same transaction as the messages (none for HTTP requests).
    report_ids: tuple[str, ...] = ()

    @property
    def cost_per_message(self) -> int:
        return request_cost(self.units, 1, self.price)

    @property
    def cost(self) -> int:
        return request_cost(self.units, len(self.phones), self.price)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message handed to a carrier."""

    id: int
    phone: str
    content: str
    kind: Kind
    units: int  # billed units: a carrier sends this many parts (see core/units.py)
    ext_code: str | None = None  # the account's extended code: appended to the source address


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """A carrier's answer to one submit.

    Exactly one outcome: taken (``carrier_ref``), refused for good (``error``: the
    message fails and is refunded), not taken (``retry_after``: it certainly did not go
    out and is queued again), or maybe taken (``unknown``: the link or process died
    between writing the submit and reading its answer; it is never sent again).
    """

    message_id: int
    carrier_ref: str | None = None
    error: str | None = None
    retry_after: float | None = None  # seconds
    # Taken in several parts: every part's reference in part order (``carrier_ref`` is
    # the first); each part's delivery report is kept and the message settles with the last.
    part_refs: tuple[str, ...] = ()
    unknown: str | None = None  # why the outcome is unknown
    # With ``retry_after``: the carrier itself is failing (down, out of balance, an
    # upstream fault), not this message; routing skips it for a while and uses the next.
    fault: bool = False
    carrier: str = ""  # the carrier that answered: stamped by the dispatcher

    @property
    def accepted(self) -> bool:
        return self.carrier_ref is not None


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    carrier: str
    carrier_ref: str
    state: MessageState  # delivered, undelivered or failed
    error: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class Message:
    """A message as the JSON API, the CLI and the console show it."""

    id: int
    batch_id: int
    account: str
    product_id: str
    kind: Kind
    phone: str
    content: str
    units: int
    cost: int
    state: MessageState
    carrier: str
    carrier_ref: str | None
    error: str | None
    created_at: datetime
    submitted_at: datetime | None
    done_at: datetime | None


@dataclass(frozen=True, slots=True)
class MessageFilter:
    account_id: int | None = None
    phone: str | None = None
    text: str | None = None  # the content contains this, as written (% and _ are plain)
    state: MessageState | None = None
    batch_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = None  # cursor: messages older than this id
    limit: int = 50
