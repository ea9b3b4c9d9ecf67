"""The group-commit writer: many concurrent send requests, one transaction.

One task collects requests for up to ``max_wait`` seconds, ``max_batch`` requests or
about ``max_messages`` messages, writes them in a single transaction on a thread of its
own, commits, and only then answers every waiter. Each request's debit is checked
against its own account's balance, so one request's `41` does not fail its neighbours.
A commit costs one fsync whether it carries one request or two hundred: that is where
the throughput comes from. While one group commits, the next is already gathered and
handed over (``in_flight`` groups at most).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor

from smsgate.core.messages import Charge
from smsgate.store.db import outage
from smsgate.store.messages import SqlMessageStore

log = logging.getLogger(__name__)

Pending = tuple[Charge, asyncio.Future[int | None]]


class GroupCommitWriter:
    def __init__(
        self,
        store: SqlMessageStore,
        max_wait: float = 0.002,
        max_batch: int = 200,
        in_flight: int = 2,
        max_messages: int = 2000,
    ) -> None:
        self._store = store
        self._max_wait = max_wait
        self._max_batch = max_batch
        self._max_messages = max_messages
        self._pending: list[Pending] = []
        self._wake: asyncio.Event | None = None
        self._slots: asyncio.Semaphore | None = None
        self._task: asyncio.Task[None] | None = None
        self._commits: set[asyncio.Task[None]] = set()
        # A second group may be handed to the database while the first commits: on
        # SQLite it joins the first one's transaction if that is still open (see
        # store/db.py, SerialWriter), so a slow fsync never leaves the queue idle.
        self._in_flight = in_flight
        self._threads = ThreadPoolExecutor(in_flight, thread_name_prefix="group-commit")

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(self._in_flight)
        self._task = asyncio.create_task(self._run(), name="group-commit-writer")

    async def stop(self) -> None:
        """Finish what was queued, then stop."""
        if self._task is None or self._wake is None:
            return
        while self._pending or self._commits:
            self._wake.set()
            await asyncio.sleep(0.005)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        self._threads.shutdown()

    async def write(self, charge: Charge) -> int | None:
        if self._wake is None:
            raise RuntimeError("the writer is not started")
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._pending.append((charge, future))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        assert self._wake is not None
        assert self._slots is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            if len(self._pending) < self._max_batch and self._max_wait > 0:
                await asyncio.sleep(self._max_wait)  # let a burst gather into one group
            await self._slots.acquire()
            batch = self._take()
            if self._pending:
                self._wake.set()
            if not batch:
                self._slots.release()
                continue
            task = asyncio.create_task(self._commit(batch))
            self._commits.add(task)
            task.add_done_callback(self._commits.discard)

    def _take(self) -> list[Pending]:
        """The next group: up to ``max_batch`` requests and about ``max_messages`` messages.

        The message bound keeps each transaction short (99-number requests are 99 rows
        each), so that the dispatcher's and the delivery reports' writes, which queue
        for the same SQLite writer, get their turn every few milliseconds.
        """
        count = messages = 0
        for charge, _ in self._pending:
            if count >= self._max_batch or (count and messages >= self._max_messages):
                break
            count += 1
            messages += len(charge.phones)
        batch = self._pending[:count]
        del self._pending[:count]
        return batch

    async def _commit(self, batch: list[Pending]) -> None:
        assert self._slots is not None
        try:
            results = await asyncio.get_running_loop().run_in_executor(
                self._threads, self._store.write_charges, [c for c, _ in batch]
            )
        except Exception as exc:
            unavailable = outage(exc)
            if unavailable is None:
                log.exception("could not commit %d send request(s)", len(batch))
            else:  # the callers answer 503 (and the HTTP layer logs the outage once)
                log.debug("could not commit %d send request(s): %s", len(batch), unavailable)
            for _, future in batch:
                if not future.done():
                    future.set_exception(unavailable or exc)
            return
        finally:
            self._slots.release()
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():  # the caller went away; what was committed stands
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)
