"""The interfaces services depend on; adapters in store/, counters/, carriers/ fill them.

Only Protocols live here; the records they carry are the domain's, in ``core/``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from smsgate.core.accounts import (
    Account,
    AccountInfo,
    LedgerKind,
    Product,
    TemplateRecord,
    TemplateStatus,
)
from smsgate.core.cmpp import DueReply, DueReport
from smsgate.core.frequency import Sent
from smsgate.core.messages import (
    Charge,
    DeliveryReport,
    Message,
    MessageFilter,
    Outgoing,
    SubmitResult,
)
from smsgate.core.push_policy import CircuitState
from smsgate.core.pushes import AttemptRecord, ClaimedPush, PushAttempt
from smsgate.core.replies import IncomingReply, NewReply, ReplyFilter, ReplyRecord
from smsgate.core.reports import ApiKeyInfo, AuditEntry, DailyCount, LedgerEntry, Operator


class Clock(Protocol):
    def now(self) -> datetime:
        """The current aware UTC time."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin, never going back (for rate windows)."""
        ...


class Accounts(Protocol):
    """Accounts with their API keys and IP allowlists."""

    def load_accounts(self) -> list[Account]: ...
    def create_account(self, username: str, password_hash: str, now: datetime) -> int: ...
    def account_info(self, username: str) -> AccountInfo: ...
    def list_accounts(self) -> list[AccountInfo]: ...
    def update_account(
        self, username: str, changes: dict[str, object], now: datetime, actor: str | None = None
    ) -> None: ...
    def add_api_key(self, username: str, key_hash: str, hint: str, now: datetime) -> None: ...
    def add_allowed(self, username: str, cidrs: Sequence[str], now: datetime) -> None: ...
    def remove_allowed(self, username: str, cidrs: Sequence[str], now: datetime) -> None: ...


class Ledger(Protocol):
    """Money: append-only ledger rows and the running balance they move."""

    def post_ledger(
        self, username: str, delta: int, kind: LedgerKind, ref: str | None, now: datetime
    ) -> int: ...
    def ledger_sum(self, username: str) -> int: ...
    def balance(self, account_id: int) -> tuple[int, int]: ...


class Catalog(Protocol):
    """What an account may send with: products, grants of private ones, signatures."""

    def load_products(self) -> list[Product]: ...
    def add_product(self, product: Product, now: datetime) -> None: ...
    def grant_products(self, username: str, product_ids: Sequence[str], now: datetime) -> None: ...
    def add_signature(self, username: str, text: str, now: datetime) -> None: ...


class WordList(Protocol):
    """The forbidden words the content filter is built from."""

    def load_words(self) -> list[str]: ...
    def add_words(self, words: Iterable[str], category: str, now: datetime) -> int: ...
    def remove_words(self, words: Iterable[str], now: datetime) -> int: ...
    def list_words(self) -> list[tuple[str, str]]: ...


class AccountStore(Accounts, Ledger, Catalog, WordList, Protocol):
    """Everything an operator configures about accounts, as one object.

    The operator service and the send path's snapshot work across all four subjects;
    a use case that needs one of them (the balance query: ``Ledger``) asks for that one.
    """

    def config_rev(self) -> int:
        """The configuration's revision: every admin change moves it."""
        ...


class Counters(Protocol):
    """Short-lived rate state: in-process on one node, Redis in a cluster."""

    def hits_since(self, key: str, since: float) -> int:
        """How many times ``key`` was recorded at or after ``since``."""
        ...

    def record(self, key: str, at: float, keep_for: float, count: int = 1) -> None:
        """Remember ``count`` hits of ``key`` (negative to take back a reservation);
        they may be forgotten ``keep_for`` seconds later."""
        ...

    def take_slot(self, key: str, at: float, interval: float) -> bool:
        """True (and remember ``at``) unless ``key`` took a slot within ``interval`` seconds."""
        ...

    def count_and_record(
        self, keys: Sequence[str], since: float, at: float, keep_for: float, count: int = 1
    ) -> list[int]:
        """In one atomic step: each key's hits at or after ``since``, then ``count`` more
        hits of each key at ``at`` (a ``count`` of 0 only reads). Two callers never both
        see the count from before the other's hits: a limit checked on the answer holds
        across every node sharing the counters."""
        ...


class PolicyStore(Protocol):
    """Templates, opt-outs and frequency caps."""

    def add_template(self, username: str, product_id: str, text: str, now: datetime) -> int: ...
    def review_template(
        self, template_id: int, status: TemplateStatus, note: str | None, now: datetime
    ) -> TemplateRecord: ...
    def templates(
        self,
        status: TemplateStatus | None = None,
        username: str | None = None,
        template_id: int | None = None,
    ) -> list[TemplateRecord]: ...
    def set_upstream_template(
        self, template_id: int, carrier: str, code: str | None, now: datetime
    ) -> TemplateRecord: ...
    def upstream_templates(self) -> list[tuple[int, str, str]]: ...
    def template_carriers(self) -> frozenset[str]: ...
    def add_optout(self, account_id: int, phone: str, now: datetime) -> bool: ...
    def remove_optout(self, username: str, phone: str, now: datetime) -> bool: ...
    def optouts(self) -> dict[int, frozenset[str]]: ...
    def set_account_limits(
        self, username: str, values: dict[str, int | None], now: datetime
    ) -> None: ...
    def set_product_limits(
        self, product_id: str, values: dict[str, int | None], now: datetime
    ) -> None: ...
    def account_limits(self) -> dict[int, dict[str, int | None]]: ...
    def product_limits(self) -> dict[str, dict[str, int | None]]: ...


class FrequencyState(Protocol):
    """Who was sent what, recently: the memory behind the anti-bombing caps."""

    shared: bool  # kept outside the process (a start must not replay the history into it)

    def history(self, key: str) -> list[Sent]: ...
    def add(self, key: str, sent: Sent, keep_for: float) -> None: ...
    def append(self, keys: Sequence[str], sent: Sent, keep_for: float) -> list[list[Sent]]:
        """Add ``sent`` to each key's history in one atomic step; each history as it was
        just before (what a check of this send must look at)."""
        ...

    def remove(self, key: str, sent: Sent) -> None: ...
    def discard(self, keys: Sequence[str], sent: Sent) -> None:
        """Take ``sent`` back from each key's history (one entry per key)."""
        ...


class ChargeWriter(Protocol):
    async def write(self, charge: Charge) -> int | None:
        """Commit the debit and the messages; the batch id, or None for too little balance."""
        ...


class MessageQueue(Protocol):
    """The dispatcher's view of the store."""

    def claim(self, node: str, limit: int, now: datetime) -> Sequence[Claimed]: ...
    def record_submits(self, results: Sequence[SubmitResult], now: datetime) -> None: ...
    def expire(self, before: datetime, now: datetime, limit: int = 500) -> int: ...
    def mark_in_flight_unknown(
        self, claimed_before: datetime, now: datetime, exclude_node: str | None = None
    ) -> int: ...
    def apply_reports(self, reports: Sequence[DeliveryReport]) -> list[bool]: ...


class Claimed(Protocol):
    @property
    def message(self) -> Outgoing: ...
    @property
    def product_id(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...


class DeliverySink(Protocol):
    """Where a carrier reports back: delivery reports and user replies (MO).

    Both return once what they carried is committed (a report that matches no message
    returns once that is known): only then may a carrier answer its SMSC, so that an
    answered report or reply is never lost in a crash.
    """

    async def delivery_report(self, report: DeliveryReport) -> None: ...
    async def incoming(self, reply: IncomingReply) -> None: ...


class CmppReports(Protocol):
    """Status reports and replies owed to CMPP customers, held until their DELIVER is
    answered (the reports are owed with the messages: ``Charge.report_ids``)."""

    def due(self, account_id: int, after: int, limit: int = 200) -> list[DueReport]: ...
    def done(self, row_ids: Sequence[int]) -> None: ...
    def due_replies(self, account_id: int, limit: int = 200) -> list[DueReply]: ...
    def replies_done(self, row_ids: Sequence[int]) -> None: ...


class Carrier(Protocol):
    """A link to an SMSC, an upstream provider, or the simulator."""

    name: str

    async def start(self, sink: DeliverySink) -> None:
        """Connect in the background; never wait for the link here."""
        ...

    async def stop(self) -> None:
        """Close the links; a submit written but not answered ends `unknown`."""
        ...

    async def submit(self, batch: Sequence[Outgoing]) -> list[SubmitResult]:
        """One result per message, in order (see SubmitResult). Raising means nothing of
        the batch was taken: it is queued again and the carrier cools off."""
        ...

    def status(self) -> Mapping[str, object]:
        """Live state for operators, JSON-able and free of secrets: at least ``state``."""
        ...


class MessageReader(Protocol):
    def messages(self, f: MessageFilter) -> list[Message]: ...
    def message(self, message_id: int) -> Message | None: ...


class InboundStore(Protocol):
    """Reply intake and what operators and accounts read about replies."""

    def account_by_ext_code(self, ext: str) -> int | None: ...
    def last_sender(self, phone: str, since: datetime) -> int | None: ...
    def add_reply(self, reply: NewReply) -> int: ...
    def replies(self, f: ReplyFilter) -> list[ReplyRecord]: ...
    def reply(self, mo_id: int) -> ReplyRecord | None: ...
    def attempts(self, mo_id: int) -> list[PushAttempt]: ...
    def repush(self, mo_id: int, now: datetime) -> bool: ...
    def assign(
        self, mo_id: int, account_id: int, optout: bool, now: datetime, actor: str
    ) -> bool: ...
    def paused_accounts(self, now: datetime) -> list[tuple[str, datetime]]: ...


class PushQueue(Protocol):
    """The push worker's view of the store."""

    def claim_pushes(
        self,
        node: str,
        limit: int,
        now: datetime,
        lease_before: datetime,
        busy: Mapping[int, int] | None = None,
        per_account: int | None = None,
    ) -> list[ClaimedPush]: ...
    def record_attempts(
        self, node: str, records: Sequence[AttemptRecord]
    ) -> list[CircuitState | None]: ...
    def settle_without_url(self, node: str, mo_id: int, now: datetime) -> None: ...
    def release_claims(self, node: str | None = None, exclude_node: str | None = None) -> int: ...


class Pusher(Protocol):
    """Delivers one reply to a URL: ``GET <url>?m=&c=``."""

    async def push(self, url: str, phone: str, content: str) -> tuple[int | None, str | None]:
        """(HTTP status, body), or (None, None) on a timeout or connection error."""
        ...

    async def close(self) -> None: ...


class ConsoleStore(Protocol):
    """What the web console reads and writes beyond the operator services: operators,
    ApiKeys, the ledger and audit trail as lists, and per-day message counts."""

    def create_operator(self, username: str, password_hash: str, now: datetime) -> None: ...
    def operator(self, username: str) -> Operator | None: ...
    def api_keys(self, username: str) -> list[ApiKeyInfo]: ...
    def revoke_api_key(self, username: str, key_id: int, now: datetime) -> bool: ...
    def ledger(self, username: str, limit: int) -> list[LedgerEntry]: ...
    def audit_log(self, limit: int, before_id: int | None = None) -> list[AuditEntry]: ...
    def daily_counts(self, account_id: int | None, since: datetime) -> list[DailyCount]: ...
