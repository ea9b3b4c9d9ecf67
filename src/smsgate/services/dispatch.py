"""Dispatch: claim queued messages, hand them to their carrier, record what happened.

Policy for a crash: a message that was claimed (possibly handed to a carrier) when
its process died becomes `unknown`. It is never re-sent on its own: the carrier may
already have it, and sending twice is worse than asking. A late delivery report
still settles it; otherwise an operator decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from smsgate.core.messages import DeliveryReport, Outgoing, SubmitResult
from smsgate.core.replies import IncomingReply
from smsgate.ports import Carrier, Clock, MessageQueue

log = logging.getLogger(__name__)

REPORT_RETRY_DELAYS = (0.1, 0.3, 1.0, 3.0)  # for a report whose submit is not stored yet
REPORT_BATCH = 2000  # delivery reports applied in one transaction, at most
CARRIER_DOWN_RETRY = 5.0  # seconds before a batch a carrier could not take is tried again


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
        housekeeping: Sequence[Callable[[datetime], object]] = (),
    ) -> None:
        self._queue = queue
        self._carriers = carriers
        self._clock = clock
        self._settings = settings
        self._replies = replies  # reply (MO) intake: services/inbound, wired by app.py
        self._housekeeping = housekeeping  # more periodic chores (e.g. the report timeout)
        self._wake = asyncio.Event()
        self._recorded = asyncio.Event()  # clear while a round's submits are being recorded
        self._recorded.set()
        self._reports: asyncio.Queue[tuple[DeliveryReport, int]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._housekeeping_due = float("-inf")  # monotonic time of the next expiry pass

    def wake(self) -> None:
        """Called after a commit: there is work now, do not wait for the next poll."""
        self._wake.set()

    async def start(self) -> None:
        await self._recover()
        self._tasks = [
            asyncio.create_task(self._apply_reports_forever(), name="delivery-reports"),
            asyncio.create_task(self._run(), name="dispatcher"),
        ]
        for carrier in self._carriers.values():
            await carrier.start(self)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for carrier in self._carriers.values():
            await carrier.stop()

    async def delivery_report(self, report: DeliveryReport) -> None:
        """Queue a report; they are applied in batches, one transaction each."""
        self._reports.put_nowait((report, 0))

    async def _apply_reports_forever(self) -> None:
        while True:
            batch = [await self._reports.get()]
            while len(batch) < REPORT_BATCH and not self._reports.empty():
                batch.append(self._reports.get_nowait())
            # A report can overtake the record of its own submit (an SMSC may send the
            # receipt before the batch's answers are stored): let a round finish first.
            await self._recorded.wait()
            try:
                settled = await asyncio.to_thread(self._queue.apply_reports, [r for r, _ in batch])
            except Exception:
                log.exception("could not store %d delivery report(s); retrying", len(batch))
                settled = [False] * len(batch)
            for (report, tries), ok in zip(batch, settled, strict=True):
                if not ok:
                    self._retry_report(report, tries)

    def _retry_report(self, report: DeliveryReport, tries: int) -> None:
        if tries >= len(REPORT_RETRY_DELAYS):
            log.info(
                "delivery report for unknown or settled %s/%s", report.carrier, report.carrier_ref
            )
            return
        asyncio.get_running_loop().call_later(
            REPORT_RETRY_DELAYS[tries], self._reports.put_nowait, (report, tries + 1)
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
            for chore in self._housekeeping:
                await asyncio.to_thread(chore, now)
        claimed = await asyncio.to_thread(
            self._queue.claim, self._settings.node, self._settings.batch_size, now
        )
        if not claimed:
            return False
        groups: defaultdict[str, list[Outgoing]] = defaultdict(list)
        for item in claimed:
            groups[item.carrier].append(item.message)
        self._recorded.clear()
        try:
            answers = await asyncio.gather(
                *(self._submit(name, msgs) for name, msgs in groups.items())
            )
            results = [result for group in answers for result in group]
            await asyncio.to_thread(self._queue.record_submits, results, self._clock.now())
        finally:
            self._recorded.set()
        return True

    async def _submit(self, name: str, batch: Sequence[Outgoing]) -> list[SubmitResult]:
        carrier = self._carriers.get(name)
        if carrier is None:
            error = f"no carrier named {name!r}; `smsgate product list` shows each product's"
            return [SubmitResult(m.id, error=error) for m in batch]
        try:
            return await carrier.submit(batch)
        except Exception:
            # The Carrier contract: an exception means nothing of the batch was taken.
            log.exception("carrier %s could not take %d message(s); will retry", name, len(batch))
            return [SubmitResult(m.id, retry_after=CARRIER_DOWN_RETRY) for m in batch]
