"""The asyncio client. Its logic lives in ``_core``; this file only does the I/O.

``_sync.py`` and ``_async.py`` differ only by ``async``/``await``, as
tests/unit/test_client_contract.py checks: change both alike."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from types import TracebackType
from typing import Any, TypeVar

import httpx

from smsgate.client._core import (
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT,
    JSON,
    MAX_NUMBERS,
    Balance,
    Call,
    ClientCore,
    Page,
    RetryPolicy,
)
from smsgate.client.bulk import Batch, BatchResult, plan_batches
from smsgate.client.exceptions import ClientError

T = TypeVar("T")


class AsyncClient:
    """SMSBao-compatible client, for smsgate or the real SMSBao service.

    Give ``password=`` (hashed here to lowercase MD5 hex) or ``api_key=`` (sent as is).
    ``retries`` applies only where trying again is safe: a send is tried again only when
    the connection failed before the request left; otherwise it raises
    :class:`SendOutcomeUnknown` and never goes out twice.
    """

    def __init__(
        self,
        username: str,
        *,
        password: str | None = None,
        api_key: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retries: int = 2,
        retry_backoff: float = 0.25,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._core = ClientCore(
            username,
            password=password,
            api_key=api_key,
            base_url=base_url,
            timeout=httpx.Timeout(timeout),
            retry=RetryPolicy(retries, retry_backoff),
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(transport=transport, follow_redirects=False)

    def __repr__(self) -> str:
        return f"AsyncClient({self._core.username!r}, base_url={self._core.base_url!r})"

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (not an ``http_client`` given by the caller)."""
        if self._owns_http:
            await self._http.aclose()

    async def _run(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = await self._http.send(call.request)
            except httpx.TransportError as exc:
                await asyncio.sleep(self._core.retry.after(call, exc, attempt))
                attempt += 1
                continue
            return call.parse(response)

    async def send(
        self, phones: str | Iterable[str], content: str, product: str | int | None = None
    ) -> None:
        """Send ``content`` to up to 99 numbers (``/sms``); returns when the server said ``0``."""
        await self._run(self._core.send(phones, content, product))

    async def send_international(self, phones: str | Iterable[str], content: str) -> None:
        """Send to numbers in E.164 form with the leading ``+`` (``/wsms``)."""
        await self._run(self._core.send_international(phones, content))

    async def send_voice_code(self, phone: str, code: str | int) -> None:
        """Have a 4-8 digit code read out to one domestic number (``/voice``)."""
        await self._run(self._core.send_voice_code(phone, code))

    async def balance(self) -> Balance:
        """Units ever sent and units remaining (``/query``, at most once a minute)."""
        return await self._run(self._core.balance())

    async def send_batch(
        self, batch: Batch, content: str, product: str | int | None = None
    ) -> BatchResult:
        """Send one planned batch; a :class:`ClientError` is returned, not raised."""
        try:
            await self.send(batch.phones, content, product)
        except ClientError as exc:
            return BatchResult(batch.index, batch.phones, exc)
        return BatchResult(batch.index, batch.phones)

    async def send_bulk(
        self,
        phones: str | Iterable[str],
        content: str,
        product: str | int | None = None,
        *,
        batch_size: int = MAX_NUMBERS,
        stop_on_error: bool = False,
    ) -> list[BatchResult]:
        """Send to any number of numbers (repeats dropped, order kept), one request per batch.

        Every batch is tried unless ``stop_on_error``, which stops after the first failed one.
        """
        results: list[BatchResult] = []
        for batch in plan_batches(phones, batch_size):
            results.append(await self.send_batch(batch, content, product))
            if stop_on_error and not results[-1].ok:
                break
        return results

    async def messages(self, **filters: Any) -> Page:
        """smsgate only: ``GET /v1/messages``, newest first, filtered by phone, text (in the
        content), state, batch, since, until (datetime or ISO 8601), limit, cursor (a page's
        ``next_cursor``)."""
        return await self._run(self._core.messages(filters))

    async def message(self, message_id: str | int) -> JSON:
        """smsgate only: ``GET /v1/messages/{id}``."""
        return await self._run(self._core.message(message_id))

    async def replies(self, **filters: Any) -> Page:
        """smsgate only: ``GET /v1/replies``, same filters as :meth:`messages`."""
        return await self._run(self._core.replies(filters))
