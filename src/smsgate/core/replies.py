"""The records of a user reply (MO): as a carrier hands it over, as intake stores it,
and as the API, the CLI and the console read it back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from smsgate.core.states import PushState


@dataclass(frozen=True, slots=True)
class IncomingReply:
    """A user reply as a carrier hands it over (the simulator now, SMPP's deliver_sm next)."""

    carrier: str
    phone: str  # the sender, as the carrier wrote it
    dest: str | None  # the destination address: service number + extended code
    content: str
    received_at: datetime


@dataclass(frozen=True, slots=True)
class NewReply:
    """What intake stores: the reply, whom it was matched to and how, whether it opted out."""

    carrier: str
    phone: str
    dest: str | None
    content: str
    received_at: datetime
    account_id: int | None
    matched_by: str | None  # "ext_code", "recent", or None when unmatched
    optout: bool


@dataclass(frozen=True, slots=True)
class ReplyRecord:
    """A stored reply and where its push is, as the API, the CLI and the console show it."""

    id: int
    account: str | None
    phone: str
    dest: str | None
    content: str
    carrier: str
    matched_by: str | None
    optout: bool
    received_at: datetime
    push_state: PushState | None  # None: unmatched, nothing to push
    attempts: int  # in the current series
    series: int  # 1, then +1 per re-push
    next_at: datetime | None
    last_error: str | None
    done_at: datetime | None


@dataclass(frozen=True, slots=True)
class ReplyFilter:
    account_id: int | None = None
    unmatched: bool = False
    phone: str | None = None
    state: PushState | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = None  # cursor: replies older than this id
    limit: int = 50
