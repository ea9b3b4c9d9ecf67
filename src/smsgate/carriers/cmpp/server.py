"""smsgate's CMPP server: customers log in with CONNECT and send with SUBMIT (docs/cmpp.md).

Each connection is a :class:`Session`. A SUBMIT is answered once the send path has
committed (or refused) it; up to ``window`` SUBMITs of one connection are worked on at
once, more are answered Result 8 (flow control). The parts of a long message are each
answered at once and the text is accepted, and billed, once the last part is in.
Status reports and replies owed to the account go out as DELIVERs (outbox.py).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from smsgate import errors
from smsgate.carriers.cmpp import codec
from smsgate.carriers.cmpp.codec import Command, Version
from smsgate.carriers.cmpp.links import PduStream
from smsgate.carriers.cmpp.outbox import Outbox
from smsgate.core import cmpp
from smsgate.core.accounts import Account
from smsgate.core.cmpp import ConnectStatus, DueReply, DueReport, Login, MsgIds
from smsgate.core.segments import Concat, Reassembler, decode_text, parse_udh

log = logging.getLogger(__name__)


class Backend(Protocol):
    """What the server needs of the send path (services/cmpp.py fills it)."""

    def login(self, sp_id: str, authenticator: bytes, timestamp: int, ip: str) -> Login: ...
    async def submit(
        self,
        account: Account,
        phones: Sequence[str],
        content: str,
        product: str,
        ip: str,
        msg_ids: Sequence[str],
    ) -> int: ...
    async def due(self, account_id: int, after: int) -> list[DueReport]: ...
    async def done(self, row_ids: Sequence[int]) -> None: ...
    async def due_replies(self, account_id: int) -> list[DueReply]: ...
    async def replies_done(self, row_ids: Sequence[int]) -> None: ...


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 7890
    gateway: int = 1  # our ISMG code inside the Msg_Ids we hand out (22 bits)
    window: int = 16  # SUBMITs of one connection worked on at once
    connections_per_account: int = 4
    report_poll_seconds: float = 0.5
    active_test_seconds: float = 60.0  # idle this long: we send ACTIVE_TEST
    login_timeout_seconds: float = 10.0
    part_timeout_seconds: float = 300.0  # a long message's missing parts are waited for


class CmppServer:
    def __init__(self, backend: Backend, config: ServerConfig, now: Callable[[], datetime]) -> None:
        self.backend = backend
        self.config = config
        self.now = now
        # A random start: Msg_Ids minted in the same second before a restart are not reused.
        self.msg_ids = MsgIds(config.gateway, start=random.randrange(0x10000))
        self.sessions: set[Session] = set()
        # (account, "report" | "reply") -> rows sent on some connection, not yet answered
        self.in_flight: dict[tuple[int, str], set[int]] = {}
        self._server: asyncio.Server | None = None
        self.chores: set[asyncio.Task[None]] = set()  # answered reports being forgotten

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.config.host, self.config.port)
        log.info("CMPP server listening on %s:%d", self.config.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for session in list(self.sessions):
            await session.close()
        if self.chores:
            await asyncio.wait(self.chores, timeout=5)
        if self._server is not None:
            await self._server.wait_closed()

    def connections_of(self, account_id: int) -> int:
        return sum(1 for s in self.sessions if s.account is not None and s.account.id == account_id)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(self, PduStream(reader, writer))
        self.sessions.add(session)
        try:
            await session.run()
        except (asyncio.IncompleteReadError, ConnectionError, codec.CodecError) as exc:
            log.info("CMPP connection %s closed: %s", session.peer, exc or type(exc).__name__)
        except Exception:
            log.exception("CMPP connection %s failed", session.peer)
        finally:
            self.sessions.discard(session)
            await session.close()


@dataclass(slots=True)
class _Group:
    msg_ids: list[str]


class Session:
    """One customer connection, from CONNECT to TERMINATE or a dropped link."""

    def __init__(self, server: CmppServer, stream: PduStream) -> None:
        self.server = server
        self.stream = stream
        self.peer = stream.peer_ip
        self.version = Version.V2
        self.account: Account | None = None
        self.busy = 0  # SUBMITs being worked on
        self.tasks: set[asyncio.Task[None]] = set()
        self.reassembler = Reassembler(server.config.part_timeout_seconds)
        self.groups: dict[tuple[str, int, int], _Group] = {}
        self.outbox: Outbox | None = None
        self.closed = False

    async def run(self) -> None:
        cfg = self.server.config
        header, body = await asyncio.wait_for(self.stream.read(), cfg.login_timeout_seconds)
        if header.command != Command.CONNECT or not await self._login(header, body):
            return
        assert self.account is not None
        self.outbox = Outbox(self.server, self.account, self.stream, self.version)
        self._spawn(self.outbox.run(lambda: self.closed))
        while not self.closed:
            try:
                header, body = await asyncio.wait_for(self.stream.read(), cfg.active_test_seconds)
            except TimeoutError:
                if self.stream.idle_for() > 3 * cfg.active_test_seconds:
                    return  # three idle periods without a word: the peer is gone
                await self.stream.send(Command.ACTIVE_TEST, self.stream.next_sequence())
                continue
            if not await self._dispatch(header, body):
                return

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for task in list(self.tasks):
            task.cancel()
        if self.outbox is not None:
            self.outbox.release()
        await self.stream.close()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and not isinstance(exc, ConnectionError | OSError):
            log.error("CMPP %s: %r", self.peer, exc)

    # -- login ------------------------------------------------------------------------

    async def _login(self, header: codec.Header, body: bytes) -> bool:
        try:
            connect = codec.decode_connect(body)
        except codec.CodecError:
            resp = codec.ConnectResp(ConnectStatus.BAD_STRUCTURE, b"", Version.V2)
            body = codec.encode_connect_resp(resp, Version.V2)
            await self.stream.send(Command.CONNECT_RESP, header.sequence, body)
            return False
        self.version = codec.version_of(connect.version)
        login = self._check(connect)
        auth = b""
        if login.status is ConnectStatus.OK:
            auth = codec.authenticator_ismg(0, connect.authenticator, login.secret, self.version)
        resp = codec.ConnectResp(login.status, auth, self.version)
        await self.stream.send(
            Command.CONNECT_RESP, header.sequence, codec.encode_connect_resp(resp, self.version)
        )
        if login.status is not ConnectStatus.OK:
            log.info("CMPP login of SP %r from %s refused: %s", connect.source_addr, self.peer,
                     login.status.name)  # fmt: skip
            return False
        self.account = login.account
        return True

    def _check(self, connect: codec.Connect) -> Login:
        if connect.version > Version.V3:
            return Login(ConnectStatus.VERSION_TOO_HIGH)
        login = self.server.backend.login(
            connect.source_addr, connect.authenticator, connect.timestamp, self.peer
        )
        account = login.account
        if account is not None:
            limit = self.server.config.connections_per_account
            if self.server.connections_of(account.id) >= limit:
                return Login(ConnectStatus.TOO_MANY_CONNECTIONS)
        return login

    # -- the conversation -------------------------------------------------------------

    async def _dispatch(self, header: codec.Header, body: bytes) -> bool:
        """Handle one PDU; False ends the session."""
        command = header.command
        if command == Command.SUBMIT:
            self._submit(header.sequence, body)
        elif command == Command.DELIVER_RESP:
            if self.outbox is not None:
                self.outbox.answered(header.sequence)
        elif command == Command.ACTIVE_TEST:
            await self.stream.send(Command.ACTIVE_TEST_RESP, header.sequence, b"\0")
        elif command == Command.TERMINATE:
            await self.stream.send(Command.TERMINATE_RESP, header.sequence)
            return False
        elif command in (Command.ACTIVE_TEST_RESP, Command.TERMINATE_RESP):
            pass
        else:
            log.info("CMPP %s sent command 0x%08x: ignored", self.peer, command)
        self._drop_expired_parts()
        return True

    def _submit(self, sequence: int, body: bytes) -> None:
        msg_id = self.server.msg_ids.next(self.server.now())
        try:
            submit = codec.decode_submit(body, self.version)
        except codec.CodecError:
            self._spawn(self._answer(sequence, msg_id, cmpp.RESULT_BAD_STRUCTURE))
            return
        if self.busy >= self.server.config.window:
            self._spawn(self._answer(sequence, msg_id, cmpp.RESULT_BUSY))
            return
        assert self.account is not None
        if submit.msg_src and submit.msg_src != self.account.cmpp_sp_id:
            self._spawn(self._answer(sequence, msg_id, cmpp.RESULT_BAD_MSG_SRC))
            return
        whole = self._assemble(submit, codec.msg_id_text(msg_id))
        if whole is None:  # a part of a long message; the text goes in with the last part
            self._spawn(self._answer(sequence, msg_id, cmpp.RESULT_OK))
            return
        text, msg_ids = whole
        self.busy += 1
        self._spawn(self._accept(sequence, msg_id, submit, text, msg_ids))

    def _assemble(self, submit: codec.Submit, msg_id: str) -> tuple[str, list[str]] | None:
        concat, payload = _concat_of(submit)
        text = _text(payload, submit.msg_fmt)
        if concat is None or concat.total <= 1:
            return text, [msg_id]
        key = "\0".join((submit.src_id, *submit.dest_terminal_ids))
        group = self.groups.setdefault((key, concat.ref, concat.total), _Group([]))
        group.msg_ids.append(msg_id)
        whole = self.reassembler.add(key, concat, text, time.monotonic())
        if whole is None:
            return None
        del self.groups[(key, concat.ref, concat.total)]
        return whole, group.msg_ids

    def _drop_expired_parts(self) -> None:
        for key, partial in self.reassembler.expired(time.monotonic()):
            for group_key in [k for k in self.groups if k[0] == key]:
                del self.groups[group_key]
            log.info("CMPP %s: a long message never completed, dropped (%d chars)",
                     self.peer, len(partial))  # fmt: skip

    async def _accept(
        self, sequence: int, msg_id: bytes, submit: codec.Submit, text: str, msg_ids: list[str]
    ) -> None:
        assert self.account is not None
        # Reports only where the customer asked for them (Registered_Delivery 1).
        owed = msg_ids if submit.registered_delivery == 1 else []
        try:
            await self.server.backend.submit(
                self.account, submit.dest_terminal_ids, text, submit.service_id, self.peer, owed
            )
            result = cmpp.RESULT_OK
        except errors.Rejected as rejected:
            result = cmpp.result_for(rejected.code)
        except errors.Unavailable:  # an outage (the backend logs it): the customer may retry
            result = cmpp.RESULT_SYSTEM_ERROR
        except Exception:  # not accepted (nothing committed): say so rather than stay silent
            log.exception("CMPP %s: a SUBMIT could not be processed", self.peer)
            result = cmpp.RESULT_SYSTEM_ERROR
        finally:
            self.busy -= 1
        await self._answer(sequence, msg_id, result)

    async def _answer(self, sequence: int, msg_id: bytes, result: int) -> None:
        resp = codec.encode_resp(codec.Resp(msg_id, result), self.version)
        await self.stream.send(Command.SUBMIT_RESP, sequence, resp)


def _concat_of(submit: codec.Submit) -> tuple[Concat | None, bytes]:
    """Where a part sits: its UDH (TP_udhi), else Pk_total / Pk_number."""
    if submit.tp_udhi:
        return parse_udh(submit.msg_content)
    if submit.pk_total > 1:
        return Concat(0, submit.pk_total, submit.pk_number), submit.msg_content
    return None, submit.msg_content


def _text(payload: bytes, msg_fmt: int) -> str:
    """Msg_Fmt 0 is ASCII in CMPP (not GSM-7 as in SMPP); 8 UCS-2; 15 GBK."""
    if msg_fmt in (0, 3, 4):
        return payload.decode("latin-1")
    return decode_text(payload, msg_fmt)
