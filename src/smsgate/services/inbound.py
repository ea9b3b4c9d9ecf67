"""Reply (MO) intake: match each user reply to an account and store it with its push.

Matching, the first rule that applies (protocol.md):

1. the extended code in the destination address (the service number, then the code);
2. the account that most recently sent to the number within the last 72 hours;
3. none: the reply is stored unmatched, visible to operators, and pushed nowhere.

A matched reply is stored together with its push row, before anything is attempted
(the push worker, ``services/push.py``, does the rest). A reply that is an opt-out
keyword (TD, T, N, 退订, R) also puts the number on that account's opt-out list, in the
same transaction; it is still pushed, so the application learns about it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from smsgate import errors
from smsgate.core import phones
from smsgate.core.optout import is_optout_keyword
from smsgate.core.pushes import PushAttempt
from smsgate.core.replies import IncomingReply, NewReply, ReplyFilter, ReplyRecord
from smsgate.core.states import PushState
from smsgate.ports import Clock, InboundStore

RECENT_SENDER_WINDOW = timedelta(hours=72)
SIMULATOR = "simulator"
MAX_CONTENT = 2000  # characters: a long reply is at most a few concatenated parts
PHONE_CHARS = 20
DEST_CHARS = 32
_DIGITS = re.compile(r"[0-9]{1,20}", re.ASCII)


@dataclass(frozen=True, slots=True)
class Match:
    account_id: int | None
    matched_by: str | None  # "ext_code" or "recent"


class InboundService:
    def __init__(self, store: InboundStore, clock: Clock, service_number: str = "") -> None:
        self._store = store
        self._clock = clock
        self._service_number = service_number.strip()

    # -- intake -----------------------------------------------------------------------

    def receive(self, reply: IncomingReply) -> ReplyRecord:
        """Store a reply from a carrier, matched or not; never refuses one."""
        phone = normalise_phone(reply.phone) or reply.phone.strip()[:PHONE_CHARS]
        return self._store_new(self._prepared(reply, phone))

    def simulate(
        self, phone: str, content: str, dest: str | None = None, *, for_account: int | None = None
    ) -> ReplyRecord:
        """A reply made up by the simulator (CLI, JSON API), checked like user input.

        With ``for_account`` the reply must match that account (the JSON API injects
        replies for the caller only); otherwise nothing is stored.
        """
        number = normalise_phone(phone)
        if number is None:
            raise errors.InvalidInput(f"not a phone number: {phone!r}")
        if not content or len(content) > MAX_CONTENT:
            raise errors.InvalidInput(f"a reply is 1-{MAX_CONTENT} characters")
        reply = IncomingReply(SIMULATOR, number, dest, content, self._clock.now())
        new = self._prepared(reply, number)
        if for_account is not None and new.account_id != for_account:
            raise errors.InvalidInput(
                f"a reply from {number} would not reach this account: it has no extended code "
                "and has not sent to that number within 72 hours"
            )
        return self._store_new(new)

    def dest_for(self, ext_code: str | None) -> str | None:
        """The destination address a reply to an account's messages carries."""
        dest = self._service_number + (ext_code or "")
        return dest or None

    def _prepared(self, reply: IncomingReply, phone: str) -> NewReply:
        match = self._match(phone, reply)
        return NewReply(
            carrier=reply.carrier,
            phone=phone,
            dest=reply.dest.strip()[:DEST_CHARS] if reply.dest else None,
            content=reply.content,
            received_at=reply.received_at,
            account_id=match.account_id,
            matched_by=match.matched_by,
            optout=match.account_id is not None and is_optout_keyword(reply.content),
        )

    def _match(self, phone: str, reply: IncomingReply) -> Match:
        ext = extended_code(reply.dest, self._service_number)
        if ext is not None:
            account_id = self._store.account_by_ext_code(ext)
            if account_id is not None:
                return Match(account_id, "ext_code")
        since = reply.received_at - RECENT_SENDER_WINDOW
        account_id = self._store.last_sender(phone, since)
        if account_id is not None:
            return Match(account_id, "recent")
        return Match(None, None)

    def _store_new(self, new: NewReply) -> ReplyRecord:
        stored = self._store.reply(self._store.add_reply(new))
        assert stored is not None  # just written in a committed transaction
        return stored

    # -- reading and re-push ----------------------------------------------------------

    def replies(self, f: ReplyFilter) -> list[ReplyRecord]:
        return self._store.replies(f)

    def reply(self, mo_id: int, account: str | None = None) -> ReplyRecord:
        """One reply; with ``account``, only if it belongs to that account."""
        found = self._store.reply(mo_id)
        if found is None or (account is not None and found.account != account):
            raise errors.NotFound(f"no reply {mo_id}" + (" for this account" if account else ""))
        return found

    def attempts(self, mo_id: int) -> list[PushAttempt]:
        return self._store.attempts(mo_id)

    def repush(self, mo_id: int, account: str | None = None) -> ReplyRecord:
        """Push a finished reply again: a new series of attempts on the full schedule."""
        found = self.reply(mo_id, account)
        if found.push_state is None:
            raise errors.Conflict(f"reply {mo_id} is unmatched: there is no account to push to")
        if found.push_state is PushState.PENDING or not self._store.repush(
            mo_id, self._clock.now()
        ):
            raise errors.Conflict(f"reply {mo_id} is still being pushed; wait for it to finish")
        return self.reply(mo_id)

    def assign(self, mo_id: int, account_id: int, actor: str = "admin") -> ReplyRecord:
        """Give an unmatched reply an owner; its push is queued once."""
        found = self.reply(mo_id)
        optout = is_optout_keyword(found.content)
        if found.account is not None or not self._store.assign(
            mo_id, account_id, optout, self._clock.now(), actor
        ):
            owner = self.reply(mo_id).account
            raise errors.Conflict(f"reply {mo_id} already belongs to {owner}")
        return self.reply(mo_id)

    def paused_accounts(self) -> list[tuple[str, datetime]]:
        """Accounts whose pushes wait for a pause to end, and until when."""
        return self._store.paused_accounts(self._clock.now())


def extended_code(dest: str | None, service_number: str) -> str | None:
    """The extended code in a destination address, or None.

    With a service number configured, the code is what follows it (an address that
    does not start with it carries none). Without one, the whole address is the code:
    that is what the simulator and a carrier that strips its own prefix hand over.
    """
    if not dest:
        return None
    text = dest.strip()
    if service_number:
        if not text.startswith(service_number):
            return None
        text = text[len(service_number) :]
    return text if _DIGITS.fullmatch(text) else None


def normalise_phone(raw: str) -> str | None:
    """The sender as the message table stores numbers (mainland: 11 digits, else E.164),
    so that a reply finds the account that sent to it; None if it is no phone number."""
    text = raw.strip()
    try:
        return phones.parse_single_domestic(text).national
    except errors.Rejected:
        pass
    digits = text.removeprefix("+").removeprefix("00")
    try:
        found = phones.parse_international("+" + digits)
    except errors.Rejected:
        return None
    phone = found[0]
    return phone.national if phone.country == "CN" else phone.e164
