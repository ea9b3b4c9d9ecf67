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


# Ids are 64-bit signed integers in the database: anything larger is a 422, not a 500.
MAX_ID = 2**63 - 1
# A phone number as stored (digits, an optional +), for filters.
PHONE_PATTERN = r"^\+?[0-9]{1,32}$"


def cursor_id(cursor: str | None) -> int | None:
    """The id a `next_cursor` stands for."""
    if cursor is None:
        return None
    if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 19 or int(cursor) > MAX_ID:
        raise errors.InvalidInput("cursor: pass the next_cursor of the previous page")
    return int(cursor)


def as_utc(value: datetime | None) -> datetime | None:
    """The time in UTC; times without a zone are read as UTC. A time that is no longer
    a date once in UTC (9999-12-31T23:59-23:59) is refused (422)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise errors.InvalidInput(f"{value.isoformat()} is out of range in UTC") from None
