"""The CMPP server's use cases: a customer's login, its submits, its status reports.

A SUBMIT goes through :class:`AcceptService` exactly as `/sms` does (same checks in the
same order, same charge, same queue); this adds only what CMPP needs around it: the
CONNECT authenticator in place of a password, and the reports owed for each Msg_Id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from smsgate import errors
from smsgate.core import cmpp
from smsgate.core.accounts import Account, ip_allowed, is_usable
from smsgate.core.cmpp import ConnectStatus, DueReply, DueReport, Login
from smsgate.core.messages import Kind
from smsgate.ports import Clock, CmppReports
from smsgate.services.accept import AcceptService, SendRequest
from smsgate.services.outages import OutageLog
from smsgate.services.snapshot import SnapshotHolder

log = logging.getLogger(__name__)


class CmppService:
    def __init__(
        self,
        snapshot: SnapshotHolder,
        accept: AcceptService,
        reports: CmppReports,
        clock: Clock,
    ) -> None:
        self._snapshot = snapshot
        self._accept = accept
        self._reports = reports
        self._clock = clock
        self._outages = OutageLog()
        self._by_sp: dict[str, Account] = {}
        self._rev = -1

    def login(self, sp_id: str, authenticator: bytes, timestamp: int, ip: str) -> Login:
        """CONNECT's checks, in order: SP code, authenticator, account usable, IP allowed.

        The timestamp is taken as the client sent it (clients stamp local time, whose
        zone we do not know), so it only salts the authenticator.
        """
        account = self._accounts().get(sp_id)
        if account is None or account.cmpp_secret is None:
            return Login(ConnectStatus.BAD_SOURCE_ADDR)
        if not cmpp.authenticator_ok(sp_id, account.cmpp_secret, timestamp, authenticator):
            return Login(ConnectStatus.AUTH_FAILED)
        if not is_usable(account, self._clock.now()):
            return Login(ConnectStatus.ACCOUNT_INACTIVE)
        if not ip_allowed(account.allowlist, ip):
            return Login(ConnectStatus.IP_NOT_ALLOWED)
        return Login(ConnectStatus.OK, account)

    def current(self, account: Account) -> Account:
        """The account as the newest snapshot has it (its status, signatures, grants)."""
        return self._snapshot.current.accounts.get(account.username, account)

    async def submit(
        self,
        account: Account,
        phones: Sequence[str],
        content: str,
        product: str,
        ip: str,
        msg_ids: Sequence[str],
    ) -> int:
        """Accept (or raise Rejected with the first failed check), owing a report for every
        message under each Msg_Id the customer was given for it (committed with them)."""
        if product not in self._snapshot.current.products:
            product = ""  # a Service_Id that names no product: the default one
        request = SendRequest(Kind.SMS, product, ",".join(phones), content, ip, tuple(msg_ids))
        current = self.current(account)
        if not is_usable(current, self._clock.now()):
            raise errors.Rejected(errors.ACCOUNT_INACTIVE)
        try:
            return await self._accept.accept(current, request)
        except errors.Unavailable as unavailable:  # one log line per outage, not per SUBMIT
            self._outages.seen(unavailable)
            raise

    async def due(self, account_id: int, after: int) -> list[DueReport]:
        return await asyncio.to_thread(self._reports.due, account_id, after)

    async def done(self, row_ids: Sequence[int]) -> None:
        await asyncio.to_thread(self._reports.done, list(row_ids))

    async def due_replies(self, account_id: int) -> list[DueReply]:
        return await asyncio.to_thread(self._reports.due_replies, account_id)

    async def replies_done(self, row_ids: Sequence[int]) -> None:
        await asyncio.to_thread(self._reports.replies_done, list(row_ids))

    def _accounts(self) -> dict[str, Account]:
        snap = self._snapshot.current
        if snap.rev != self._rev:
            self._by_sp = {a.cmpp_sp_id: a for a in snap.accounts.values() if a.cmpp_sp_id}
            self._rev = snap.rev
        return self._by_sp
