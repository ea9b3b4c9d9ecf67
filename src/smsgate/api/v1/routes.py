"""The JSON API (``/v1``): the same services, errors as ``{"code","message","detail"}``.

Authentication is ``Authorization: Bearer <ApiKey>``; the key names the account.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from smsgate import errors
from smsgate.api.params import client_ip
from smsgate.api.smsbao import SmsbaoDeps
from smsgate.core.accounts import Account
from smsgate.ports import AccountStore


class ErrorBody(BaseModel):
    code: str
    message: str
    detail: str = ""


class AccountOut(BaseModel):
    username: str
    status: str
    expires_at: datetime | None
    balance: int
    sent: int
    mo_url: str | None
    ext_code: str | None
    allowlist: list[str]


def error_response(exc: errors.SmsgateError) -> JSONResponse:
    """The one JSON rendering of every error in errors.py."""
    if isinstance(exc, errors.Rejected):
        code = exc.code
        body = ErrorBody(code=code.slug, message=code.message, detail=exc.detail)
        return JSONResponse(body.model_dump(), status_code=code.http_status)
    if isinstance(exc, errors.AdminError):
        slug = type(exc).__name__.lower()
        body = ErrorBody(code=slug, message=str(exc))
        return JSONResponse(body.model_dump(), status_code=exc.http_status)
    return JSONResponse(ErrorBody(code="error", message=str(exc)).model_dump(), status_code=500)


def router(deps: SmsbaoDeps, store: AccountStore) -> APIRouter:
    api = APIRouter(prefix="/v1", responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})

    async def current_account(request: Request) -> Account:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise errors.Rejected(errors.BAD_CREDENTIALS, "send Authorization: Bearer <ApiKey>")
        ip = client_ip(request, deps.trusted_proxies)
        return deps.auth.authenticate_api_key(key.strip(), ip)

    Caller = Annotated[Account, Depends(current_account)]

    @api.get("/account", response_model=AccountOut, summary="The calling account")
    async def get_account(account: Caller) -> AccountOut:
        info = await run_in_threadpool(store.account_info, account.username)
        return AccountOut(
            username=account.username,
            status=account.status.value,
            expires_at=account.expires_at,
            balance=info.balance,
            sent=info.sent,
            mo_url=account.mo_url,
            ext_code=account.ext_code,
            allowlist=[str(n) for n in account.allowlist],
        )

    return api


def install(app: FastAPI, deps: SmsbaoDeps, store: AccountStore) -> None:
    app.include_router(router(deps, store))

    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, errors.SmsgateError)
        return error_response(exc)

    app.add_exception_handler(errors.SmsgateError, handle)
