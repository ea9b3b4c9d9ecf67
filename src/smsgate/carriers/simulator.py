"""The simulator carrier: the default, for development and tests, with fault knobs.

It "delivers" every message after a delay and reports back like an SMSC would.
Outcomes are scriptable by the last digits of the number (settings):

- ``fail_suffix``: the carrier reports `undelivered` (e.g. a dead number);
- ``stall_suffix``: accepted, but no report ever comes (a lost receipt);
- ``throttle_suffix``: the first submit is refused with "slow down" and a retry time;
- ``reject_suffix``: the submit itself is refused (the message fails and is refunded);
- ``failure_ratio``: that share of the rest is reported `undelivered` at random.

What it delivered stays readable in the message table (`smsgate messages`, /v1).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from smsgate.core.messages import DeliveryReport, Outgoing, SubmitResult
from smsgate.core.replies import IncomingReply
from smsgate.core.states import MessageState
from smsgate.ports import DeliverySink


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    delay_seconds: float = 0.5
    failure_ratio: float = 0.0
    fail_suffix: str = ""
    stall_suffix: str = ""
    throttle_suffix: str = ""
    reject_suffix: str = ""
    throttle_retry_seconds: float = 1.0
    seed: int | None = None


class SimulatorCarrier:
    def __init__(self, config: SimulatorConfig, name: str = "simulator") -> None:
        self.name = name
        self._config = config
        self._random = random.Random(config.seed)
        self._sink: DeliverySink | None = None
        self._throttled: set[int] = set()
        self._pending: set[asyncio.Task[None]] = set()
        self._submitted = 0
        self._last_report_at: datetime | None = None

    async def start(self, sink: DeliverySink) -> None:
        self._sink = sink

    async def stop(self) -> None:
        for task in list(self._pending):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def status(self) -> dict[str, object]:
        return {
            "state": "ready" if self._sink is not None else "stopped",
            "kind": "simulator",
            "submitted": self._submitted,
            "reports_pending": len(self._pending),
            "last_receipt_at": self._last_report_at,
        }

    async def inject_reply(self, phone: str, content: str, dest: str | None = None) -> None:
        """A user reply, handed to the sink as an SMSC's MO would be (console, tests)."""
        if self._sink is None:
            raise RuntimeError("the simulator is not started")
        await self._sink.incoming(IncomingReply(self.name, phone, dest, content, datetime.now(UTC)))

    async def submit(self, batch: Sequence[Outgoing]) -> list[SubmitResult]:
        reports: list[tuple[str, MessageState, str | None]] = []
        results = [self._submit_one(message, reports) for message in batch]
        self._submitted += sum(1 for r in results if r.accepted)
        if reports:  # one timer for the batch, not a task per message
            task = asyncio.create_task(self._report_later(reports))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
        return results

    def _submit_one(
        self, message: Outgoing, reports: list[tuple[str, MessageState, str | None]]
    ) -> SubmitResult:
        c = self._config
        if _ends(message.phone, c.reject_suffix):
            return SubmitResult(message.id, error="simulator: submit rejected (reject_suffix)")
        if _ends(message.phone, c.throttle_suffix) and message.id not in self._throttled:
            self._throttled.add(message.id)
            return SubmitResult(message.id, retry_after=c.throttle_retry_seconds)
        self._throttled.discard(message.id)
        ref = uuid.uuid4().hex
        if not _ends(message.phone, c.stall_suffix):
            reports.append((ref, *self._outcome(message)))
        return SubmitResult(message.id, carrier_ref=ref)

    def _outcome(self, message: Outgoing) -> tuple[MessageState, str | None]:
        if _ends(message.phone, self._config.fail_suffix):
            return MessageState.UNDELIVERED, "simulator: fail_suffix"
        if self._config.failure_ratio and self._random.random() < self._config.failure_ratio:
            return MessageState.UNDELIVERED, "simulator: random failure"
        return MessageState.DELIVERED, None

    async def _report_later(self, reports: list[tuple[str, MessageState, str | None]]) -> None:
        await asyncio.sleep(self._config.delay_seconds)
        if self._sink is None:
            return
        at = self._last_report_at = datetime.now(UTC)
        sink = self._sink
        # All at once: the sink applies queued reports in one transaction.
        await asyncio.gather(
            *(
                sink.delivery_report(DeliveryReport(self.name, ref, state, error, at))
                for ref, state, error in reports
            )
        )


def _ends(phone: str, suffix: str) -> bool:
    return bool(suffix) and phone.endswith(suffix)
