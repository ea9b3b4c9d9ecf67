"""The SMPP carrier: messages to submit_sm over one or more binds, and back.

What each submit's fate means for the message (docs/decisions.md, "SMPP connector"):

- every part answered OK: taken, ``carrier_ref`` the first part's message_id and
  ``part_refs`` all of them (the message settles when every part's receipt is in);
- ``ESME_RTHROTTLED`` / ``ESME_RMSGQFUL``: the connector pauses (slowing every bind) and
  sends that part again, a few times; still refused: the message is queued again
  (``retry_after``), unless another of its parts was taken;
- no bind up, or a transient SMSC error: not taken, queued again (the carrier cools);
- any other error status: refused for good, the message fails and is refunded;
- written and never answered (the link died, or no answer within ``response_timeout``),
  or only some parts taken: ``unknown``, never sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from smsgate.carriers.smpp import encoding, receipts
from smsgate.carriers.smpp.inbound import Inbound
from smsgate.carriers.smpp.pdu import ShortMessage, Status
from smsgate.carriers.smpp.session import (
    BindMode,
    MaybeSent,
    NotSent,
    Session,
    SessionConfig,
    status_name,
)
from smsgate.core.messages import Kind, Outgoing, SubmitResult
from smsgate.ports import DeliverySink

log = logging.getLogger(__name__)

THROTTLED = frozenset({Status.RTHROTTLED, Status.RMSGQFUL})
TRANSIENT = frozenset({Status.RSYSERR, Status.RINVBNDSTS})  # not taken; the SMSC is unwell
THROTTLE_TRIES = 5
THROTTLE_PAUSE = (0.2, 0.5, 1.0, 2.0, 4.0)  # seconds, by try
REQUEUE_AFTER_THROTTLE = 5.0


@dataclass(frozen=True, slots=True)
class SmppConfig:
    session: SessionConfig
    source_addr: str = ""
    source_ton: int = 0
    source_npi: int = 0
    dest_ton: int = 0  # numbers are stored national (13800138000): TON unknown
    dest_npi: int = 1
    tps: float = 0.0  # parts per second over the whole connector; 0: no limit
    binds: int = 1
    bind_mode: str = "transceiver"  # or "transmitter+receiver"
    registered_delivery: int = 1
    reassembly_seconds: float = 60.0
    id_bases: str = "as-is"  # how submit_sm_resp and receipts write ids (receipts.ID_BASES)


class Pacer:
    """At most ``rate`` starts per second; ``pause`` holds every start back for a while."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0

    async def wait(self) -> None:
        now = time.monotonic()
        if self._next <= now:
            self._next = now + self._interval
            return
        delay = self._next - now
        self._next += self._interval
        await asyncio.sleep(delay)

    def pause(self, seconds: float) -> None:
        self._next = max(self._next, time.monotonic() + seconds)


@dataclass(frozen=True, slots=True)
class _Part:
    outcome: str  # taken, refused, not_sent, maybe
    detail: str  # the message_id when taken, else why


class SmppCarrier:
    def __init__(self, config: SmppConfig, name: str = "smpp") -> None:
        self.name = name
        self._config = config
        self._inbound = Inbound(name, config.reassembly_seconds, id_bases=config.id_bases)
        self._pacer = Pacer(config.tps)
        self._refs = itertools.count(int(time.time()) & 0xFF)
        self._sessions: list[Session] = []
        self._picks: dict[int, int] = {}  # id(session) -> messages given to it
        self._sweeper: asyncio.Task[None] | None = None
        self._rate: dict[int, int] = {}  # second -> parts submitted
        self.submitted = 0
        self.throttled = 0
        self.errors = 0
        self.last_error: str | None = None

    async def start(self, sink: DeliverySink) -> None:
        self._inbound.attach(sink)
        modes = (
            [BindMode.TRANSMITTER, BindMode.RECEIVER]
            if self._config.bind_mode == "transmitter+receiver"
            else [BindMode.TRANSCEIVER]
        )
        for _ in range(max(1, self._config.binds)):
            for mode in modes:
                session = Session(self._config.session, mode, self._inbound.on_deliver, self.name)
                self._sessions.append(session)
                session.start()
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await asyncio.gather(*(s.stop() for s in self._sessions))
        self._sessions.clear()

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            await self._inbound.sweep()

    async def submit(self, batch: Sequence[Outgoing]) -> list[SubmitResult]:
        return list(await asyncio.gather(*(self._submit_one(m) for m in batch)))

    async def _submit_one(self, message: Outgoing) -> SubmitResult:
        if message.kind is Kind.VOICE:
            return SubmitResult(message.id, error=f"{self.name}: SMPP carries no voice messages")
        session = self._pick()
        if session is None:
            return SubmitResult(message.id, retry_after=0.0, fault=True)
        parts = [
            asyncio.ensure_future(self._send_part(session, sm)) for sm in self._bodies(message)
        ]
        return self._result(message.id, await asyncio.gather(*parts))

    def _pick(self) -> Session | None:
        bound = [s for s in self._sessions if s.can_submit and s.bound]
        if not bound:
            return None
        # the fewest in flight; among equals the least used, so a burst spreads over binds
        chosen = min(bound, key=lambda s: (s.in_flight, self._picks.get(id(s), 0)))
        self._picks[id(chosen)] = self._picks.get(id(chosen), 0) + 1
        return chosen

    def _bodies(self, message: Outgoing) -> list[ShortMessage]:
        parts = encoding.encode(message.content, message.units, next(self._refs))
        c = self._config
        return [
            ShortMessage(
                source_addr=c.source_addr + (message.ext_code or ""),
                destination_addr=message.phone.removeprefix("+"),  # no "+" in an SMPP address
                short_message=body,
                source_ton=c.source_ton,
                source_npi=c.source_npi,
                dest_ton=c.dest_ton,
                dest_npi=c.dest_npi,
                esm_class=parts.esm_class,
                registered_delivery=c.registered_delivery,
                data_coding=parts.coding,
            )
            for body in parts.bodies
        ]

    async def _send_part(self, session: Session, sm: ShortMessage) -> _Part:
        for attempt in range(THROTTLE_TRIES):
            await self._pacer.wait()
            try:
                answer = await session.send(sm)
            except NotSent as exc:
                return _Part("not_sent", str(exc))
            try:
                status, message_id = await answer
            except MaybeSent as exc:
                self._error(f"unanswered submit: {exc}")
                return _Part("maybe", str(exc))
            if status == Status.OK:
                self._count()
                return _Part("taken", receipts.submitted_id(message_id, self._config.id_bases))
            if status not in THROTTLED:
                self._error(f"submit_sm: {status_name(status)}")
                kind = "not_sent" if status in TRANSIENT else "refused"
                return _Part(kind, status_name(status))
            self.throttled += 1
            self._pacer.pause(THROTTLE_PAUSE[attempt])
        return _Part("not_sent", "throttled")

    def _result(self, message_id: int, parts: Sequence[_Part]) -> SubmitResult:
        kinds = {p.outcome for p in parts}
        if kinds == {"taken"}:
            refs = tuple(p.detail for p in parts)
            return SubmitResult(message_id, refs[0], part_refs=refs if len(refs) > 1 else ())
        why = "; ".join(f"part {i}: {p.outcome} {p.detail}" for i, p in enumerate(parts, 1))
        if kinds & {"taken", "maybe"}:
            return SubmitResult(message_id, unknown=f"{self.name}: {why}")
        if "refused" in kinds:
            return SubmitResult(message_id, error=f"{self.name}: {why}")
        if all(p.detail == "throttled" for p in parts):
            return SubmitResult(message_id, retry_after=REQUEUE_AFTER_THROTTLE)
        return SubmitResult(message_id, retry_after=0.0, fault=True)

    def _count(self) -> None:
        self.submitted += 1
        second = int(time.monotonic())
        self._rate[second] = self._rate.get(second, 0) + 1
        if len(self._rate) > 10:
            for old in [s for s in self._rate if s < second - 5]:
                del self._rate[old]

    def _error(self, what: str) -> None:
        self.errors += 1
        self.last_error = what

    def status(self) -> Mapping[str, object]:
        now = int(time.monotonic())
        recent = sum(self._rate.get(s, 0) for s in range(now - 5, now))
        bound = sum(1 for s in self._sessions if s.bound)
        last = self._inbound.last_receipt
        errors = [s.last_error for s in self._sessions if s.last_error]
        return {
            "state": _state(bound, len(self._sessions), self._sessions),
            "binds": len(self._sessions),  # flat numbers: /metrics exports each as a gauge
            "binds_bound": bound,
            "window": self._config.session.window,
            "window_in_use": sum(s.in_flight for s in self._sessions),
            "submits_per_second": round(recent / 5, 1),
            "submitted": self.submitted,
            "throttled": self.throttled,
            "errors": self.errors,
            "last_error": self.last_error or (errors[-1] if errors else None),
            "receipts": self._inbound.receipts,
            "replies": self._inbound.replies,
            "last_receipt": last.isoformat() if last else None,
        }


def _state(bound: int, configured: int, sessions: Sequence[Session]) -> str:
    if configured == 0:
        return "stopped"
    if bound == configured:
        return "bound"
    if any(s.state == "refused" for s in sessions):
        return "bind refused"
    return "partly bound" if bound else "connecting"


def build(name: str, options: Mapping[str, Any]) -> SmppCarrier:
    def number(key: str, default: float) -> float:
        value = options.get(key)
        return default if value is None or value == "" else float(value)

    session = SessionConfig(
        host=str(options["host"]),
        port=int(options["port"]),
        system_id=str(options["system_id"]),
        password=str(options.get("password") or ""),
        system_type=str(options.get("system_type") or ""),
        window=int(number("window", 32)),
        response_timeout=number("response_timeout", 10.0),
        enquire_link_seconds=number("enquire_link_seconds", 30.0),
    )
    config = SmppConfig(
        session=session,
        source_addr=str(options.get("source_addr") or ""),
        source_ton=int(number("source_ton", 0)),
        source_npi=int(number("source_npi", 0)),
        dest_ton=int(number("dest_ton", 0)),
        dest_npi=int(number("dest_npi", 1)),
        tps=number("tps", 0.0),
        binds=int(number("binds", 1)),
        bind_mode=str(options.get("bind_mode") or "transceiver"),
        reassembly_seconds=number("reassembly_seconds", 60.0),
        id_bases=str(options.get("id_bases") or "as-is"),
    )
    return SmppCarrier(config, name)
