"""What the upstream HTTP providers (smsbao, aliyun, tencent) share.

- :class:`HttpLimits` and :class:`Gate`: each upstream's timeout, concurrency limit and rate
  limit (requests per second), applied to every request it makes.
- :func:`request`: one HTTP exchange, with the one distinction the send path cares about on a
  transport failure: the request certainly never left (:class:`NotSent`: the connection
  could not be made, so the message can go elsewhere) or it may have been taken
  (:class:`MaybeSent`: the answer was lost, so the message becomes ``unknown``, never re-sent).
- :class:`UpstreamState`: the live ``status()`` of an upstream, without secrets, and the
  "stopped" state a configuration error puts it in.
- The :class:`~smsgate.core.messages.SubmitResult` shapes every upstream answers with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import httpx

from smsgate.core.messages import DeliveryReport, Kind, Outgoing, SubmitResult
from smsgate.core.upstream_templates import TemplateSend, UpstreamTemplate, match_upstream
from smsgate.errors import Rejected
from smsgate.ports import DeliverySink

log = logging.getLogger(__name__)
T = TypeVar("T")

# A message an upstream could not take is routed again at once: the router cools the
# upstream, so the next carrier of the route takes it (or it waits for the cooling to end).
FAULT_RETRY_SECONDS = 0.0


@dataclass(frozen=True, slots=True)
class HttpLimits:
    timeout: float = 10.0  # seconds for each step: connect, send, wait for the answer
    concurrency: int = 8  # requests in flight at once
    rate: float = 0.0  # requests per second at most; 0 = no limit


def number(options: Mapping[str, object], key: str, default: float) -> float:
    """A numeric option (stored options are validated already; None means the default)."""
    value = options.get(key)
    return default if value is None or value == "" else float(str(value))


def text(options: Mapping[str, object], key: str, default: str = "") -> str:
    value = options.get(key)
    return default if value is None else str(value)


def limits_from(options: Mapping[str, object]) -> HttpLimits:
    """The ``timeout`` / ``concurrency`` / ``rate`` options every upstream kind has."""
    return HttpLimits(
        timeout=number(options, "timeout", 10.0),
        concurrency=int(number(options, "concurrency", 8)),
        rate=number(options, "rate", 0.0),
    )


class Gate:
    """Concurrency and pacing: ``async with gate:`` around each request."""

    def __init__(
        self,
        limits: HttpLimits,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._sleep = sleep
        self._slots = asyncio.Semaphore(max(1, limits.concurrency))
        self._interval = 1.0 / limits.rate if limits.rate > 0 else 0.0
        self._monotonic = monotonic
        self._next = 0.0  # monotonic time of the next free start slot
        self.in_use = 0

    async def __aenter__(self) -> None:
        await self._slots.acquire()
        self.in_use += 1
        if self._interval:
            now = self._monotonic()
            start = max(now, self._next)
            self._next = start + self._interval
            if start > now:
                await self._sleep(start - now)

    async def __aexit__(self, *exc: object) -> None:
        self.in_use -= 1
        self._slots.release()


class NotSent(Exception):
    """The request never reached the provider: nothing can have been taken."""


class MaybeSent(Exception):
    """The request may have reached the provider, but its answer was lost."""


# A connection that could not be made (or a pool slot not had) carried nothing; a timeout or
# error once the request is on its way may hide a message the provider took.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


async def request(
    client: httpx.AsyncClient, gate: Gate, method: str, url: str, **kwargs: object
) -> httpx.Response:
    """One exchange; :class:`NotSent` or :class:`MaybeSent` instead of httpx's errors."""
    async with gate:
        try:
            return await client.request(method, url, **kwargs)  # type: ignore[arg-type]
        except _NOT_SENT as exc:
            raise NotSent(_describe(exc)) from exc
        except httpx.HTTPError as exc:
            raise MaybeSent(_describe(exc)) from exc


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def make_client(limits: HttpLimits) -> httpx.AsyncClient:
    # httpx logs every request's URL at INFO; an SMSBao URL carries `p`, a password
    # equivalent (smsgate's own access log masks it too).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return httpx.AsyncClient(
        timeout=limits.timeout,
        limits=httpx.Limits(max_connections=max(1, limits.concurrency)),
        trust_env=False,  # an upstream is reached directly, never through the host's proxy
    )


class CarrierStopped(RuntimeError):
    """Raised by submit() of an upstream stopped by a configuration error: nothing taken."""


@dataclass
class UpstreamState:
    """The live state ``status()`` reports (JSON-able, no secrets)."""

    state: str = "starting"  # running | stopped
    stopped_because: str | None = None
    submitted: int = 0
    errors: int = 0
    last_error: str | None = None
    last_receipt_at: datetime | None = None
    balance: object = None
    balance_at: datetime | None = None
    extra: dict[str, object] = field(default_factory=dict)

    def error(self, text: str) -> None:
        self.errors += 1
        self.last_error = text

    def stop(self, name: str, reason: str) -> None:
        """A configuration error: stop taking messages until the operator fixes it."""
        if self.state != "stopped":
            log.error(
                "ALERT carrier %s stopped: %s (fix its options with `carrier set`)", name, reason
            )
        self.state = "stopped"
        self.stopped_because = reason
        self.error(reason)

    def resume(self, name: str) -> None:
        if self.state == "stopped":
            log.warning("carrier %s resumed: the upstream accepts its credentials again", name)
        self.state = "running"
        self.stopped_because = None

    def as_dict(self, gate: Gate) -> dict[str, object]:
        return {
            "state": self.state,
            "stopped_because": self.stopped_because,
            "in_flight": gate.in_use,
            "submitted": self.submitted,
            "errors": self.errors,
            "last_error": self.last_error,
            "last_receipt_at": _iso(self.last_receipt_at),
            "balance": self.balance,
            "balance_at": _iso(self.balance_at),
            **self.extra,
        }


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def not_taken(message_id: int, retry_after: float = FAULT_RETRY_SECONDS) -> SubmitResult:
    """Certainly not taken, because the upstream is failing: cool it, try the next one."""
    return SubmitResult(message_id, retry_after=retry_after, fault=True)


def maybe_taken(message_id: int, reason: str) -> SubmitResult:
    return SubmitResult(message_id, unknown=reason)


def refused(message_id: int, reason: str) -> SubmitResult:
    return SubmitResult(message_id, error=reason)


def taken(message_id: int, ref: str) -> SubmitResult:
    return SubmitResult(message_id, carrier_ref=ref)


async def report(sink: DeliverySink | None, reports: Sequence[DeliveryReport]) -> None:
    if sink is None:
        return
    for item in reports:
        await sink.delivery_report(item)


class UpstreamCarrier:
    """The Carrier plumbing of an HTTP upstream: client, limits, status, background loops.

    A kind implements :meth:`_submit_one` (one message, one exchange) and may add
    background loops (:meth:`_loops`: balance, receipts, replies), each run every
    ``interval`` seconds until the carrier stops.
    """

    probes_when_stopped = False  # a kind whose loop can tell that the upstream is fixed

    def __init__(self, name: str, limits: HttpLimits) -> None:
        self.name = name
        self._limits = limits
        self._gate = Gate(limits)
        self._state = UpstreamState()
        self._client: httpx.AsyncClient | None = None
        self._sink: DeliverySink | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, sink: DeliverySink) -> None:
        self._sink = sink
        self._client = make_client(self._limits)
        self._state.state = "running"
        for interval, step in self._loops():
            self._spawn(self._every(interval, step))

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def status(self) -> dict[str, object]:
        return self._state.as_dict(self._gate)

    async def submit(self, batch: Sequence[Outgoing]) -> list[SubmitResult]:
        if self._client is None:
            raise CarrierStopped(f"carrier {self.name} is not started")
        if self._state.state == "stopped":  # nothing taken; the router cools us again
            return [not_taken(m.id) for m in batch]
        return list(await asyncio.gather(*(self._submit_one(m) for m in batch)))

    async def _submit_one(self, message: Outgoing) -> SubmitResult:
        raise NotImplementedError

    def _loops(self) -> list[tuple[float, Callable[[], Awaitable[object]]]]:
        return []

    async def _exchange(self, message_id: int, call: Awaitable[T]) -> T | SubmitResult:
        """The call's answer, or the message's fate when the exchange itself failed."""
        try:
            return await call
        except NotSent as exc:
            self._state.error(f"not sent: {exc}")
            return not_taken(message_id)
        except MaybeSent as exc:
            self._state.error(f"answer lost: {exc}")
            return maybe_taken(message_id, f"{self.name}: answer lost ({exc})")

    async def _request(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        if self._client is None:
            raise NotSent(f"carrier {self.name} not started")
        return await request(self._client, self._gate, method, url, **kwargs)

    async def _every(self, interval: float, step: Callable[[], Awaitable[object]]) -> None:
        """Run ``step`` every ``interval`` seconds, from one interval after the start."""
        while True:
            await asyncio.sleep(interval)
            if self._state.state == "stopped" and not self.probes_when_stopped:
                continue  # a stopped upstream is asked nothing until its options change
            try:
                await step()
            except Exception as exc:  # a loop must outlive one bad answer
                log.exception("carrier %s: background step failed", self.name)
                self._state.error(f"background: {exc}")

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _report_later(self, reports: Sequence[DeliveryReport]) -> None:
        """Hand reports to the sink from a task: the submit's own record must come first."""
        if reports:
            self._spawn(report(self._sink, reports))

    def _received(self) -> None:
        self._state.last_receipt_at = datetime.now(UTC)


TemplateSource = Callable[[], Mapping[str, Sequence[UpstreamTemplate]]]
_template_source: list[TemplateSource] = [dict]


def set_template_source(source: TemplateSource) -> None:
    """Where template-based upstreams read the operator's mapping (app.py: the snapshot).

    Read at every submit, so a carrier built a moment ago and a mapping changed a moment ago
    are both current.
    """
    _template_source[0] = source


class TemplateUpstream(UpstreamCarrier):
    """An upstream that sends template codes and values (Alibaba Cloud, Tencent Cloud)."""

    def __init__(self, name: str, limits: HttpLimits) -> None:
        super().__init__(name, limits)
        self._own: tuple[UpstreamTemplate, ...] | None = None

    def use_templates(self, mapped: Mapping[str, Sequence[UpstreamTemplate]]) -> None:
        """A mapping of this carrier's own instead of the process-wide source (tests)."""
        self._own = tuple(mapped.get(self.name, ()))

    @property
    def _templates(self) -> Sequence[UpstreamTemplate]:
        if self._own is not None:
            return self._own
        return _template_source[0]().get(self.name, ())

    def _template_send(self, message: Outgoing) -> TemplateSend | SubmitResult:
        """The code and values to send ``message`` with, or its refusal."""
        if message.kind is Kind.VOICE:
            return refused(message.id, f"{self.name}: voice codes are not sent by SMS")
        try:
            send = match_upstream(message.content, self._templates)
        except Rejected as exc:
            return refused(message.id, f"{self.name}: {exc}")
        if send is None:
            return refused(message.id, f"{self.name}: no template mapped for this content")
        return send
