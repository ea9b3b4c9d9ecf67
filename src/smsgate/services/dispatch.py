"""Dispatch: claim queued messages, route each to a carrier, record what happened.

Routing (core/routing.py): a message goes to the first carrier of its product's route
that serves its number's network and is not cooling off after a fault. Only a message
no carrier took is routed again, so none is ever sent through two carriers.

Policy for a crash: a message that was claimed (possibly handed to a carrier) when
its process died becomes `unknown`. It is never re-sent on its own: the carrier may
already have it, and sending twice is worse than asking. A late delivery report
still settles it; otherwise an operator decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from smsgate.core.messages import DeliveryReport, Outgoing, SubmitResult
from smsgate.core.replies import IncomingReply
from smsgate.core.routing import Rules, choose, network_name
from smsgate.ports import Carrier, Claimed, Clock, MessageQueue

log = logging.getLogger(__name__)

REPORT_RETRY_DELAYS = (0.1, 0.3, 1.0, 3.0)  # for a report whose submit is not stored yet
REPORT_BATCH = 2000  # delivery reports applied in one transaction, at most
NO_CARRIER_RETRY = 1.0  # seconds before a message whose carriers all cool is tried again


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    node: str
    batch_size: int = 100
    idle_poll_seconds: float = 0.2
    validity: timedelta = timedelta(hours=24)
    claim_lease: timedelta = timedelta(minutes=2)
    single_node: bool = True  # SQLite: every claim not ours is from a dead process
    # Expiry and (cluster) reaping of dead workers' claims scan the whole queue: at most
    # this often, not every round, or a long backlog would slow every round down.
    housekeeping_seconds: float = 5.0


class Dispatcher:
    def __init__(
        self,
        queue: MessageQueue,
        carriers: Mapping[str, Carrier],
        clock: Clock,
        settings: DispatchSettings,
        replies: Callable[[IncomingReply], Awaitable[object]] | None = None,
        *,
        rules: Mapping[str, Rules] | None = None,
        routes: Callable[[str], Sequence[str]] | None = None,
    ) -> None:
        self._queue = queue
        # Live views (the carrier registry changes them while the server runs).
        self._carriers = carriers
        self._rules = rules if rules is not None else {name: Rules() for name in carriers}
        self._routes = routes or (lambda _product: tuple(self._carriers)[:1])
        self._clock = clock
        self._settings = settings
        self._replies = replies  # reply (MO) intake: services/inbound, wired by app.py
        self._wake = asyncio.Event()
        self._recorded = asyncio.Event()  # clear while a round's submits are being recorded
        self._recorded.set()
        self._reports: asyncio.Queue[_QueuedReport] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._housekeeping_due = float("-inf")  # monotonic time of the next expiry pass
        self._cooling: dict[str, float] = {}  # carrier -> monotonic time it may be used again

    def wake(self) -> None:
        """Called after a commit: there is work now, do not wait for the next poll."""
        self._wake.set()

    async def start(self) -> None:
        await self._recover()
        self._tasks = [
            asyncio.create_task(self._apply_reports_forever(), name="delivery-reports"),
            asyncio.create_task(self._run(), name="dispatcher"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def delivery_report(self, report: DeliveryReport) -> None:
        """Queue a report and wait until it is committed (or known to match nothing).

        Reports are applied in batches, one transaction each; a carrier answers its SMSC
        only after this returns.
        """
        done = asyncio.get_running_loop().create_future()
        self._reports.put_nowait(_QueuedReport(report, 0, done))
        await done

    async def _apply_reports_forever(self) -> None:
        while True:
            batch = [await self._reports.get()]
            while len(batch) < REPORT_BATCH and not self._reports.empty():
                batch.append(self._reports.get_nowait())
            # A report can overtake the record of its own submit (an SMSC may send the
            # receipt before the batch's answers are stored): let a round finish first.
            await self._recorded.wait()
            try:
                settled = await asyncio.to_thread(
                    self._queue.apply_reports, [q.report for q in batch]
                )
            except Exception:
                log.exception("could not store %d delivery report(s); retrying", len(batch))
                settled = [False] * len(batch)
            for queued, ok in zip(batch, settled, strict=True):
                if ok:
                    _finish(queued.done)
                else:
                    self._retry_report(queued)

    def _retry_report(self, queued: _QueuedReport) -> None:
        report = queued.report
        if queued.tries >= len(REPORT_RETRY_DELAYS):
            log.info(
                "delivery report for unknown or settled %s/%s", report.carrier, report.carrier_ref
            )
            _finish(queued.done)
            return
        again = _QueuedReport(report, queued.tries + 1, queued.done)
        asyncio.get_running_loop().call_later(
            REPORT_RETRY_DELAYS[queued.tries], self._reports.put_nowait, again
        )

    async def incoming(self, reply: IncomingReply) -> None:
        """A carrier received a user reply: hand it to reply intake."""
        if self._replies is None:
            log.error("reply from %s via %s dropped: no reply intake", reply.phone, reply.carrier)
            return
        await self._replies(reply)

    async def _recover(self) -> None:
        now = self._clock.now()
        if self._settings.single_node:
            await asyncio.to_thread(
                self._queue.mark_in_flight_unknown, now, now, self._settings.node
            )
        else:
            await self._reap_stale_claims()

    async def _reap_stale_claims(self) -> None:
        now = self._clock.now()
        await asyncio.to_thread(
            self._queue.mark_in_flight_unknown, now - self._settings.claim_lease, now
        )

    async def _run(self) -> None:
        while True:
            try:
                busy = await self.dispatch_once()
            except Exception:  # a database hiccup must not stop delivery for good
                log.exception("dispatch round failed; retrying")
                busy = False
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._settings.idle_poll_seconds)
                self._wake.clear()

    async def dispatch_once(self) -> bool:
        """One round: claim, submit, record (and now and then expire). True when it found work."""
        now = self._clock.now()
        if self._clock.monotonic() >= self._housekeeping_due:
            self._housekeeping_due = self._clock.monotonic() + self._settings.housekeeping_seconds
            await asyncio.to_thread(self._queue.expire, now - self._settings.validity, now)
            if not self._settings.single_node:
                await self._reap_stale_claims()
        claimed = await asyncio.to_thread(
            self._queue.claim, self._settings.node, self._settings.batch_size, now
        )
        if not claimed:
            return False
        groups, unrouted = self._route(claimed)
        self._recorded.clear()
        try:
            answers = await asyncio.gather(
                *(self._submit(name, msgs) for name, msgs in groups.items())
            )
            results = unrouted + [result for group in answers for result in group]
            await asyncio.to_thread(self._queue.record_submits, results, self._clock.now())
        finally:
            self._recorded.set()
        return True

    def _route(
        self, claimed: Sequence[Claimed]
    ) -> tuple[dict[str, list[Outgoing]], list[SubmitResult]]:
        """The claimed messages by chosen carrier, and the answers for those none takes."""
        now = self._clock.monotonic()
        cooling = [name for name, until in self._cooling.items() if until > now]
        groups: defaultdict[str, list[Outgoing]] = defaultdict(list)
        unrouted: list[SubmitResult] = []
        for item in claimed:
            route = tuple(self._routes(item.product_id))
            restricted = any(self._rules[n].networks for n in route if n in self._rules)
            network = network_name(item.message.phone) if restricted else ""
            choice = choose(route, network, self._rules, cooling)
            if choice.carrier is not None:
                groups[choice.carrier].append(item.message)
            elif choice.wait:
                wait = min((self._cooling[n] for n in route if n in self._cooling), default=now)
                retry = max(NO_CARRIER_RETRY, wait - now)
                unrouted.append(SubmitResult(item.message.id, retry_after=retry))
            else:
                unrouted.append(SubmitResult(item.message.id, error=choice.error))
        return groups, unrouted

    async def _submit(self, name: str, batch: Sequence[Outgoing]) -> list[SubmitResult]:
        carrier = self._carriers.get(name)
        if carrier is None:  # removed since routing
            return [SubmitResult(m.id, retry_after=NO_CARRIER_RETRY, carrier=name) for m in batch]
        try:
            results = await carrier.submit(batch)
        except Exception:
            # The Carrier contract: an exception means nothing of the batch was taken.
            log.exception("carrier %s could not take %d message(s); will retry", name, len(batch))
            # Routed again at once: the next carrier of each route takes them, or they
            # wait for this one's cooling period to end.
            self._cool(name)
            return [SubmitResult(m.id, retry_after=0.0, fault=True, carrier=name) for m in batch]
        if any(r.fault for r in results):
            self._cool(name)
        return [dataclasses.replace(r, carrier=name) for r in results]

    def _cool(self, name: str) -> None:
        rules = self._rules.get(name, Rules())
        self._cooling[name] = self._clock.monotonic() + rules.cooling_seconds
        log.warning("carrier %s is cooling off for %.0f s", name, rules.cooling_seconds)


@dataclass(slots=True)
class _QueuedReport:
    report: DeliveryReport
    tries: int
    done: asyncio.Future[None]


def _finish(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)
