"""What the JSON API's routers share: the Bearer ApiKey caller, cursors, times."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from starlette.requests import Request

from smsgate import errors
from smsgate.api.params import client_ip
from smsgate.api.smsbao import SmsbaoDeps
from smsgate.core.accounts import Account


def bearer_account(deps: SmsbaoDeps) -> Callable[[Request], Awaitable[Account]]:
    """A dependency: the account named by `Authorization: Bearer <ApiKey>`."""

    async def current_account(request: Request) -> Account:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise errors.Rejected(errors.BAD_CREDENTIALS, "send Authorization: Bearer <ApiKey>")
        ip = client_ip(request.scope, deps.trusted_proxies)
        return deps.auth.authenticate_api_key(key.strip(), ip)

    return current_account


def cursor_id(cursor: str | None) -> int | None:
    """The id a `next_cursor` stands for."""
    if cursor is None:
        return None
    if not cursor.isdigit():
        raise errors.InvalidInput("cursor: pass the next_cursor of the previous page")
    return int(cursor)


def as_utc(value: datetime | None) -> datetime | None:
    """Times without a zone are read as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
