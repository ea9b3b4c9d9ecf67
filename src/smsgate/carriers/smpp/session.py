"""One SMPP bind: connect, bind, keep alive, reconnect; a window of submits matched by
sequence number; every deliver_sm answered once its handler has returned.

A submit ends one of three ways, and the carrier maps them to the send path's outcomes:

- an answer (``submit_sm_resp`` or ``generic_nack`` with its sequence number): ``(status,
  message_id)``;
- :class:`NotSent`: it was never written (no bind, or the link dropped first), so it can
  be sent again without a duplicate;
- :class:`MaybeSent`: it was written but no answer came (the link dropped, or
  ``response_timeout`` passed): the SMSC may have taken it, so it is never sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from smsgate.carriers.smpp.pdu import (
    Bind,
    Cmd,
    Framer,
    Pdu,
    PduError,
    Sequences,
    ShortMessage,
    Status,
    message_id_of,
)

log = logging.getLogger(__name__)

Answer = tuple[int, str]  # (command_status, message_id)
DeliverHandler = Callable[[ShortMessage], Awaitable[int]]  # the deliver_sm_resp status


class BindMode(StrEnum):
    TRANSCEIVER = "transceiver"
    TRANSMITTER = "transmitter"
    RECEIVER = "receiver"


BIND_COMMANDS = {
    BindMode.TRANSCEIVER: Cmd.BIND_TRANSCEIVER,
    BindMode.TRANSMITTER: Cmd.BIND_TRANSMITTER,
    BindMode.RECEIVER: Cmd.BIND_RECEIVER,
}


class NotSent(Exception):
    """The submit was never written: sending it again is safe."""


class MaybeSent(Exception):
    """The submit was written and not answered: the SMSC may have taken it."""


class BindRefused(Exception):
    """The SMSC answered the bind with an error (credentials, system type, too many binds)."""


@dataclass(frozen=True, slots=True)
class SessionConfig:
    host: str
    port: int
    system_id: str
    password: str
    system_type: str = ""
    window: int = 32
    response_timeout: float = 10.0
    enquire_link_seconds: float = 30.0
    backoff_min: float = 0.5
    backoff_max: float = 30.0


class _Link:
    """One TCP connection, bound: what dies with it (its pending submits) lives here."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.framer = Framer()
        self.pending: dict[int, asyncio.Future[Answer]] = {}
        self.timers: dict[int, asyncio.TimerHandle] = {}
        self.closed = False
        self._queued: list[bytes] = []

    def write(self, pdu: Pdu) -> None:
        """Queue a PDU; the queue goes out in one socket write at the next loop turn.

        One send per PDU cost more than the rest of a submit together; a window's worth of
        PDUs written in the same turn now share one. Queued counts as written.
        """
        if self.closed or self.writer.is_closing():
            raise NotSent("link closed")
        if not self._queued:
            asyncio.get_running_loop().call_soon(self._flush)
        self._queued.append(pdu.encode())

    def _flush(self) -> None:
        data, self._queued = b"".join(self._queued), []
        if not self.writer.is_closing():
            self.writer.write(data)

    @property
    def backed_up(self) -> bool:
        return self.writer.transport.get_write_buffer_size() > 256 * 1024

    def fail_pending(self, why: str) -> None:
        self.closed = True
        for seq, future in list(self.pending.items()):
            if not future.done():
                future.set_exception(MaybeSent(why))
            self.pending.pop(seq, None)
        for timer in self.timers.values():
            timer.cancel()
        self.timers.clear()


class Session:
    def __init__(
        self,
        config: SessionConfig,
        mode: BindMode,
        on_deliver: DeliverHandler,
        label: str = "smpp",
    ) -> None:
        self.config = config
        self.mode = mode
        self.label = label
        self._on_deliver = on_deliver
        self._sequences = Sequences()
        self._window = asyncio.Semaphore(max(1, config.window))
        self._link: _Link | None = None
        self._task: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.state = "stopped"
        self.last_error: str | None = None
        self.binds = 0  # successful binds since start (1 + reconnects)

    @property
    def bound(self) -> bool:
        return self._link is not None and not self._link.closed

    @property
    def can_submit(self) -> bool:
        return self.mode is not BindMode.RECEIVER

    @property
    def in_flight(self) -> int:
        return len(self._link.pending) if self._link else 0

    def start(self) -> None:
        self.state = "connecting"
        self._task = asyncio.create_task(self._run(), name=f"{self.label}-{self.mode}")

    async def stop(self) -> None:
        """Unbind politely (briefly), close; a submit still unanswered ends MaybeSent."""
        task, self._task = self._task, None
        link = self._link
        if link is not None and not link.closed:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await self._request(link, Cmd.UNBIND)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if link is not None:
            link.fail_pending("carrier stopped")
            link.writer.close()
            with contextlib.suppress(Exception):
                await link.writer.wait_closed()
        for handler in list(self._handlers):
            handler.cancel()
        self.state = "stopped"

    async def send(self, sm: ShortMessage) -> asyncio.Future[Answer]:
        """Write a submit_sm once a window slot is free; the future of its answer.

        Raises NotSent when there is no bind to write it on.
        """
        await self._window.acquire()
        link = self._link
        if link is None or link.closed:
            self._window.release()
            raise NotSent("not bound")
        try:
            future = self._register(link, Cmd.SUBMIT_SM, sm.encode())
        except BaseException:
            self._window.release()
            raise
        future.add_done_callback(lambda _: self._window.release())
        if link.backed_up:
            with contextlib.suppress(ConnectionError):
                await link.writer.drain()  # a dead link fails the future through the reader
        return future

    def _register(self, link: _Link, command: int, body: bytes) -> asyncio.Future[Answer]:
        seq = self._sequences.next()
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        link.write(Pdu(command, 0, seq, body))  # raises NotSent before anything is kept
        link.pending[seq] = future
        link.timers[seq] = asyncio.get_running_loop().call_later(
            self.config.response_timeout, self._timed_out, link, seq
        )
        return future

    async def _request(self, link: _Link, command: int, body: bytes = b"") -> Answer:
        return await self._register(link, command, body)

    def _timed_out(self, link: _Link, seq: int) -> None:
        link.timers.pop(seq, None)
        future = link.pending.pop(seq, None)
        if future is not None and not future.done():
            future.set_exception(MaybeSent(f"no answer in {self.config.response_timeout:g} s"))

    async def _run(self) -> None:
        delay = self.config.backoff_min
        while True:
            try:
                link = await self._connect()
            except (OSError, TimeoutError, PduError, BindRefused) as exc:
                self.last_error = f"bind failed: {exc}"
                self.state = "refused" if isinstance(exc, BindRefused) else "connecting"
                log.warning("%s %s: %s; retry in %.1f s", self.label, self.mode, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.config.backoff_max)
                continue
            delay = self.config.backoff_min
            self._link, self.state = link, "bound"
            self.binds += 1
            log.info("%s bound as %s to %s:%s", self.label, self.mode, *self._address())
            why = await self._serve(link)
            link.fail_pending(why)
            self._link, self.state, self.last_error = None, "connecting", why
            link.writer.close()
            log.warning("%s %s link lost: %s", self.label, self.mode, why)
            await asyncio.sleep(self.config.backoff_min)

    def _address(self) -> tuple[str, int]:
        return self.config.host, self.config.port

    async def _connect(self) -> _Link:
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation (stop)
        async with asyncio.timeout(self.config.response_timeout):
            reader, writer = await asyncio.open_connection(self.config.host, self.config.port)
        link = _Link(reader, writer)
        try:
            async with asyncio.timeout(self.config.response_timeout):
                await self._bind(link)
        except BaseException:
            writer.close()
            raise
        return link

    async def _bind(self, link: _Link) -> None:
        body = Bind(self.config.system_id, self.config.password, self.config.system_type)
        seq = self._sequences.next()
        link.write(Pdu(BIND_COMMANDS[self.mode], 0, seq, body.encode()))
        while True:
            data = await link.reader.read(65536)
            if not data:
                raise ConnectionError("closed by the SMSC during bind")
            for pdu in link.framer.feed(data):
                if pdu.sequence == seq and pdu.is_response:
                    if pdu.status != Status.OK:
                        raise BindRefused(status_name(pdu.status))
                    return

    async def _serve(self, link: _Link) -> str:
        """Read and dispatch until the link ends; why it ended."""
        keepalive = asyncio.create_task(self._keepalive(link))
        try:
            while True:
                data = await link.reader.read(65536)
                if not data:
                    return "closed by the SMSC"
                for pdu in link.framer.feed(data):
                    if not self._dispatch(link, pdu):
                        return "unbound by the SMSC"
        except (OSError, PduError) as exc:
            return f"{type(exc).__name__}: {exc}"
        finally:
            keepalive.cancel()

    def _dispatch(self, link: _Link, pdu: Pdu) -> bool:
        """Handle one PDU; False when the link is to end."""
        if pdu.is_response:
            self._answered(link, pdu)
        elif pdu.command_id == Cmd.DELIVER_SM:
            task = asyncio.create_task(self._deliver(link, pdu))
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        elif pdu.command_id == Cmd.ENQUIRE_LINK:
            self._answer(link, Cmd.ENQUIRE_LINK_RESP, pdu.sequence)
        elif pdu.command_id == Cmd.UNBIND:
            self._answer(link, Cmd.UNBIND_RESP, pdu.sequence)
            return False
        else:
            self._answer(link, Cmd.GENERIC_NACK, pdu.sequence, Status.RINVCMDID)
        return True

    def _answered(self, link: _Link, pdu: Pdu) -> None:
        timer = link.timers.pop(pdu.sequence, None)
        if timer is not None:
            timer.cancel()
        future = link.pending.pop(pdu.sequence, None)
        if future is None:
            log.info("%s: answer to unknown sequence %d ignored", self.label, pdu.sequence)
            return
        if not future.done():
            try:
                message_id = message_id_of(pdu.body) if pdu.command_id == Cmd.SUBMIT_SM_RESP else ""
            except PduError:
                message_id = ""
            future.set_result((pdu.status, message_id))

    async def _deliver(self, link: _Link, pdu: Pdu) -> None:
        """Hand a deliver_sm over; answer only once the handler returned (it committed)."""
        try:
            sm = ShortMessage.decode(pdu.body)
        except PduError as exc:
            log.warning("%s: malformed deliver_sm (%s)", self.label, exc)
            self._answer(link, Cmd.DELIVER_SM_RESP, pdu.sequence, Status.RSYSERR, b"\0")
            return
        status = await self._on_deliver(sm)
        self._answer(link, Cmd.DELIVER_SM_RESP, pdu.sequence, status, b"\0")

    def _answer(
        self, link: _Link, command: int, sequence: int, status: int = 0, body: bytes = b""
    ) -> None:
        try:
            link.write(Pdu(command, status, sequence, body))
        except NotSent:
            log.info("%s: link gone before answering sequence %d", self.label, sequence)

    async def _keepalive(self, link: _Link) -> None:
        """enquire_link every so often; no answer in time ends the link."""
        while self.config.enquire_link_seconds > 0:
            await asyncio.sleep(self.config.enquire_link_seconds)
            try:
                await self._request(link, Cmd.ENQUIRE_LINK)
            except (NotSent, MaybeSent) as exc:
                log.warning("%s: enquire_link unanswered (%s); reconnecting", self.label, exc)
                link.writer.transport.abort()
                return


def status_name(status: int) -> str:
    try:
        return f"{Status(status).name} (0x{status:02X})"
    except ValueError:
        return f"0x{status:08X}"
