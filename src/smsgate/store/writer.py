"""The group-commit writer: many concurrent send requests, one transaction.

One task collects requests for up to ``max_wait`` seconds or ``max_batch`` requests,
writes them in a single transaction on a worker thread, commits, and only then
answers every waiter. Each request's debit is conditional on its own balance, so
one request's `41` does not fail its neighbours. A commit costs one fsync whether
it carries one request or two hundred: that is where the throughput comes from.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.concurrency import run_in_threadpool

from smsgate.core.messages import Charge
from smsgate.store.messages import SqlMessageStore

log = logging.getLogger(__name__)

Pending = tuple[Charge, asyncio.Future[int | None]]


class GroupCommitWriter:
    def __init__(
        self, store: SqlMessageStore, max_wait: float = 0.002, max_batch: int = 200
    ) -> None:
        self._store = store
        self._max_wait = max_wait
        self._max_batch = max_batch
        self._queue: asyncio.Queue[Pending] | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name="group-commit-writer")

    async def stop(self) -> None:
        """Finish what was queued, then stop."""
        if self._task is None or self._queue is None:
            return
        await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def write(self, charge: Charge) -> int | None:
        if self._queue is None:
            raise RuntimeError("the writer is not started")
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        await self._queue.put((charge, future))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            deadline = asyncio.get_running_loop().time() + self._max_wait
            while len(batch) < self._max_batch:
                timeout = deadline - asyncio.get_running_loop().time()
                if timeout <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), timeout))
                except TimeoutError:
                    break
            await self._commit(batch)
            for _ in batch:
                self._queue.task_done()

    async def _commit(self, batch: list[Pending]) -> None:
        try:
            results = await run_in_threadpool(self._store.write_charges, [c for c, _ in batch])
        except Exception as exc:
            log.exception("could not commit %d send request(s)", len(batch))
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():  # the caller went away; what was committed stands
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)
