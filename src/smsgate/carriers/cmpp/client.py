"""The ``cmpp`` carrier kind: CMPP 2.0/3.0 to a carrier's ISMG, behind the Carrier port.

``connections`` links, each logging in with CONNECT (the ISMG's AuthenticatorISMG is
checked), reconnecting with back-off (1 s doubling to 30 s), sending ACTIVE_TEST when idle
and hanging up when the ISMG stays silent. A link has a window of unanswered SUBMITs; the
whole carrier keeps to ``tps`` SUBMITs a second. Text always goes as UCS-2 (Msg_Fmt 8): 70
characters in one SUBMIT, else parts of 67 with a ``05 00 03`` header and Pk_total /
Pk_number. Outcome of a message (SubmitResult):

- every part answered Result 0: taken, each part's Msg_Id (16 hex digits) a reference;
- the first part refused: Result 8 (flow control) is "not taken, try later", any other
  Result fails the message (refunded);
- no link up, or the link gone before the SUBMIT was written: not taken, queued again;
- written but never answered (timeout, link lost, a later part refused after earlier ones
  were taken): ``unknown``, never sent again.

Status reports and user replies come as DELIVER; each is answered only after the sink
has committed it. DELIVERs are handled off the read loop, so a report that overtakes its
own SUBMIT_RESP does not hold that SUBMIT_RESP up (the sink waits for the submit's record).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from smsgate.carriers.cmpp import codec
from smsgate.carriers.cmpp.codec import Command, Version
from smsgate.carriers.cmpp.links import PduStream
from smsgate.core import cmpp
from smsgate.core.messages import DeliveryReport, Outgoing, SubmitResult
from smsgate.core.replies import IncomingReply
from smsgate.core.segments import (
    Coding,
    Reassembler,
    concat_udh,
    decode_text,
    encode_text,
    parse_udh,
    split,
)
from smsgate.core.states import MessageState
from smsgate.ports import DeliverySink

log = logging.getLogger(__name__)

NOT_UP_RETRY = 5.0  # seconds before a message refused for want of a link is tried again
THROTTLED_RETRY = 1.0  # after Result 8 (flow control)
MAX_BACKOFF = 30.0


@dataclass(frozen=True, slots=True)
class ClientConfig:
    host: str
    port: int
    sp_id: str
    secret: str
    version: Version = Version.V2
    service_id: str = ""
    src_id: str = ""  # the sender number; an account's extended code is appended
    window: int = 16
    tps: float = 0.0  # 0: no limit
    connections: int = 1
    response_timeout: float = 10.0
    active_test_seconds: float = 30.0


class NotWritten(Exception):
    """The SUBMIT never left: no link, or the link went before it was written."""


class LinkLost(Exception):
    """The link went after the SUBMIT was written: its fate is unknown."""


class CmppCarrier:
    def __init__(self, name: str, config: ClientConfig) -> None:
        self.name = name
        self.config = config
        self.links = [Link(self, i) for i in range(max(1, config.connections))]
        self._sink: DeliverySink | None = None
        self._refs = itertools.count(1)
        self._next_slot = 0.0
        self._rate_lock = asyncio.Lock()
        self._turn = itertools.count()

    async def start(self, sink: DeliverySink) -> None:
        self._sink = sink
        for link in self.links:
            link.start()

    async def stop(self) -> None:
        for link in self.links:
            await link.stop()

    def status(self) -> Mapping[str, object]:
        up = sum(1 for link in self.links if link.up)
        state = "up" if up == len(self.links) else "partly up" if up else "connecting"
        errors = [link.last_error for link in self.links if link.last_error]
        return {  # flat values: /metrics exports each number as a gauge
            "state": state,
            "links_up": up,
            "links": len(self.links),
            "window": self.config.window,
            "in_flight": sum(len(link.pending) for link in self.links),
            "last_error": errors[-1] if errors else None,
        }

    @property
    def sink(self) -> DeliverySink:
        assert self._sink is not None, "not started"
        return self._sink

    async def submit(self, batch: Sequence[Outgoing]) -> list[SubmitResult]:
        return list(await asyncio.gather(*(self._submit_one(m) for m in batch)))

    async def _submit_one(self, message: Outgoing) -> SubmitResult:
        pieces = split(message.content, Coding.UCS2)
        ref, total = next(self._refs) & 0xFF, len(pieces)
        refs: list[str] = []
        for seq, piece in enumerate(pieces, start=1):
            payload = encode_text(piece, Coding.UCS2)
            if total > 1:
                payload = concat_udh(ref, total, seq) + payload
            submit = codec.Submit(
                msg_src=self.config.sp_id,
                src_id=self.config.src_id + (message.ext_code or ""),
                dest_terminal_ids=(message.phone,),
                msg_content=payload,
                tp_udhi=1 if total > 1 else 0,
                pk_total=total,
                pk_number=seq,
                service_id=self.config.service_id,
            )
            try:
                resp = await self._send(submit)
            except codec.CodecError as exc:  # this message cannot be written; others can
                return SubmitResult(message.id, error=f"not sendable over CMPP: {exc}")
            except NotWritten as exc:
                if refs:
                    return SubmitResult(message.id, unknown=f"link lost between parts: {exc}")
                return SubmitResult(message.id, retry_after=NOT_UP_RETRY, fault=True)
            except (LinkLost, TimeoutError) as exc:
                return SubmitResult(message.id, unknown=f"no SUBMIT_RESP: {exc or 'timeout'}")
            if resp.result != cmpp.RESULT_OK:
                return _refused(message.id, resp.result, seq, refs)
            refs.append(codec.msg_id_text(resp.msg_id))
        return SubmitResult(
            message.id, carrier_ref=refs[0], part_refs=tuple(refs) if total > 1 else ()
        )

    async def _send(self, submit: codec.Submit) -> codec.Resp:
        await self._pace()
        up = [link for link in self.links if link.up]
        if not up:
            raise NotWritten("no link up")
        link = up[next(self._turn) % len(up)]
        return await link.submit(codec.encode_submit(submit, self.config.version))

    async def _pace(self) -> None:
        """At most ``tps`` SUBMITs a second over all links."""
        if self.config.tps <= 0:
            return
        async with self._rate_lock:
            now = time.monotonic()
            wait = self._next_slot - now
            self._next_slot = max(now, self._next_slot) + 1 / self.config.tps
        if wait > 0:
            await asyncio.sleep(wait)


def _refused(message_id: int, result: int, seq: int, refs: list[str]) -> SubmitResult:
    if refs:  # earlier parts went out: the message may show up partly
        return SubmitResult(message_id, unknown=f"part {seq} refused (Result {result})")
    if result == cmpp.RESULT_BUSY:
        return SubmitResult(message_id, retry_after=THROTTLED_RETRY)
    return SubmitResult(message_id, error=f"CMPP Result {result}")


class Link:
    """One connection to the ISMG, reconnected for as long as the carrier runs."""

    def __init__(self, carrier: CmppCarrier, index: int) -> None:
        self.carrier = carrier
        self.index = index
        self.up = False
        self.last_error: str | None = None
        self.pending: dict[int, asyncio.Future[codec.Resp]] = {}
        self._window = asyncio.Semaphore(carrier.config.window)
        self._stream: PduStream | None = None
        self._task: asyncio.Task[None] | None = None
        self._chores: set[asyncio.Task[None]] = set()
        self._parts = Reassembler(300.0)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run_forever(), name=f"cmpp-link-{self.index}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for chore in list(self._chores):
            chore.cancel()

    async def submit(self, body: bytes) -> codec.Resp:
        cfg = self.carrier.config
        async with self._window:
            stream = self._stream
            if not self.up or stream is None:
                raise NotWritten("link down")
            sequence = stream.next_sequence()
            future: asyncio.Future[codec.Resp] = asyncio.get_running_loop().create_future()
            self.pending[sequence] = future
            try:
                await stream.send(Command.SUBMIT, sequence, body)
            except (ConnectionError, OSError) as exc:
                self.pending.pop(sequence, None)
                raise LinkLost(str(exc)) from exc  # possibly partly written
            try:
                return await asyncio.wait_for(future, cfg.response_timeout)
            finally:
                self.pending.pop(sequence, None)

    async def _run_forever(self) -> None:
        backoff = 1.0
        while True:
            try:
                await self._session()
                backoff = 1.0  # a clean end (TERMINATE from the ISMG)
            except asyncio.CancelledError:
                await self._down("stopped")
                raise
            except Exception as exc:  # any failure: log, back off, connect again
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("CMPP %s link %d: %s", self.carrier.name, self.index, self.last_error)
            await self._down(self.last_error or "closed")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _session(self) -> None:
        cfg = self.carrier.config
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(cfg.host, cfg.port), cfg.response_timeout
        )
        self._stream = stream = PduStream(reader, writer)
        await self._login(stream)
        self.up, self.last_error = True, None
        log.info("CMPP %s link %d up", self.carrier.name, self.index)
        keepalive = asyncio.create_task(self._keepalive(stream))
        try:
            while True:
                header, body = await stream.read()
                if not await self._dispatch(stream, header, body):
                    return
        finally:
            keepalive.cancel()

    async def _login(self, stream: PduStream) -> None:
        cfg = self.carrier.config
        stamp = cmpp.timestamp_of(datetime.now(UTC))
        source = codec.authenticator_source(cfg.sp_id, cfg.secret, stamp)
        connect = codec.Connect(cfg.sp_id, source, int(cfg.version), stamp)
        await stream.send(Command.CONNECT, stream.next_sequence(), codec.encode_connect(connect))
        header, body = await asyncio.wait_for(stream.read(), cfg.response_timeout)
        if header.command != Command.CONNECT_RESP:
            raise ConnectionError(f"expected CONNECT_RESP, got 0x{header.command:08x}")
        resp = codec.decode_connect_resp(body, cfg.version)
        if resp.status != 0:
            raise ConnectionError(f"login refused: Status {resp.status}")
        expected = codec.authenticator_ismg(0, source, cfg.secret, cfg.version)
        if resp.authenticator != expected:
            raise ConnectionError("the ISMG's AuthenticatorISMG is wrong: not our gateway?")

    async def _keepalive(self, stream: PduStream) -> None:
        cfg = self.carrier.config
        while True:
            await asyncio.sleep(cfg.active_test_seconds / 2)
            idle = stream.idle_for()
            if idle > 3 * cfg.active_test_seconds:
                await stream.close()  # the read loop ends with IncompleteReadError
                return
            if idle > cfg.active_test_seconds:
                await stream.send(Command.ACTIVE_TEST, stream.next_sequence())

    async def _dispatch(self, stream: PduStream, header: codec.Header, body: bytes) -> bool:
        version = self.carrier.config.version
        if header.command == Command.SUBMIT_RESP:
            future = self.pending.get(header.sequence)
            if future is not None and not future.done():
                future.set_result(codec.decode_resp(body, version))
        elif header.command == Command.DELIVER:
            chore = asyncio.create_task(self._deliver(stream, header.sequence, body))
            self._chores.add(chore)
            chore.add_done_callback(self._chore_done)
        elif header.command == Command.ACTIVE_TEST:
            await stream.send(Command.ACTIVE_TEST_RESP, header.sequence, b"\0")
        elif header.command == Command.TERMINATE:
            await stream.send(Command.TERMINATE_RESP, header.sequence)
            return False
        return True

    def _chore_done(self, chore: asyncio.Task[None]) -> None:
        """A DELIVER not answered (the sink failed, a bad PDU): the ISMG sends it again."""
        self._chores.discard(chore)
        if not chore.cancelled() and chore.exception() is not None:
            log.warning("CMPP %s: DELIVER left unanswered: %r", self.carrier.name,
                        chore.exception())  # fmt: skip

    async def _deliver(self, stream: PduStream, sequence: int, body: bytes) -> None:
        """Hand a report or reply to the sink; answer the ISMG only once it is committed."""
        version = self.carrier.config.version
        deliver = codec.decode_deliver(body, version)
        if deliver.registered_delivery == 1:
            await self.carrier.sink.delivery_report(self._report(deliver))
        else:
            reply = self._reply(deliver)
            if reply is not None:
                await self.carrier.sink.incoming(reply)
        resp = codec.encode_resp(codec.Resp(deliver.msg_id, 0), version)
        with contextlib.suppress(ConnectionError, OSError):
            await stream.send(Command.DELIVER_RESP, sequence, resp)

    def _report(self, deliver: codec.Deliver) -> DeliveryReport:
        report = codec.decode_report(deliver.msg_content, self.carrier.config.version)
        delivered = report.stat == "DELIVRD"
        return DeliveryReport(
            carrier=self.carrier.name,
            carrier_ref=codec.msg_id_text(report.msg_id),
            state=MessageState.DELIVERED if delivered else MessageState.UNDELIVERED,
            error=None if delivered else report.stat,
            at=datetime.now(UTC),
        )

    def _reply(self, deliver: codec.Deliver) -> IncomingReply | None:
        concat, payload = (
            parse_udh(deliver.msg_content) if deliver.tp_udhi else (None, deliver.msg_content)
        )
        fmt = deliver.msg_fmt
        text = payload.decode("latin-1") if fmt in (0, 3, 4) else decode_text(payload, fmt)
        key = f"{deliver.src_terminal_id}\0{deliver.dest_id}"
        now = time.monotonic()
        for _, partial in self._parts.expired(now):
            log.warning("CMPP %s: a long reply never completed (%d characters): dropped",
                        self.carrier.name, len(partial))  # fmt: skip
        whole = self._parts.add(key, concat, text, now)
        if whole is None:
            return None  # answered now; the reply goes in with its last part
        return IncomingReply(
            self.carrier.name, deliver.src_terminal_id, deliver.dest_id, whole, datetime.now(UTC)
        )

    async def _down(self, why: str) -> None:
        self.up = False
        for future in self.pending.values():
            if not future.done():
                future.set_exception(LinkLost(why))
        self.pending.clear()
        if self._stream is not None:
            await self._stream.close()
            self._stream = None


def build(name: str, options: Mapping[str, Any]) -> CmppCarrier:
    return CmppCarrier(
        name,
        ClientConfig(
            host=str(options["host"]),
            port=int(options["port"]),
            sp_id=str(options["sp_id"]),
            secret=str(options.get("secret") or ""),
            version=Version.V3 if str(options.get("version", "2")) == "3" else Version.V2,
            service_id=str(options.get("service_id") or ""),
            src_id=str(options.get("src_id") or ""),
            window=int(options.get("window", 16)),
            tps=float(options.get("tps", 0.0)),
            connections=int(options.get("connections", 1)),
            response_timeout=float(options.get("response_timeout", 10.0)),
            active_test_seconds=float(options.get("active_test_seconds", 30.0)),
        ),
    )
