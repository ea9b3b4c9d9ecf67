"""The JSON API (``/v1``): the same services, errors as ``{"code","message","detail"}``.

Authentication is ``Authorization: Bearer <ApiKey>``; the key names the account.
"""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from smsgate import errors
from smsgate.api.smsbao import SmsbaoDeps
from smsgate.api.v1.paging import MAX_ID, PHONE_PATTERN, as_utc, bearer_account, cursor_id
from smsgate.core.accounts import Account
from smsgate.core.messages import Message, MessageFilter
from smsgate.core.states import MessageState
from smsgate.ports import AccountStore, MessageReader


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


BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="smsgate operators", charset="UTF-8"'}


def error_response(exc: errors.SmsgateError) -> JSONResponse:
    """The one JSON rendering of every error in errors.py."""
    if isinstance(exc, errors.Rejected):
        code = exc.code
        body = ErrorBody(code=code.slug, message=code.message, detail=exc.detail)
        return JSONResponse(body.model_dump(), status_code=code.http_status)
    if isinstance(exc, errors.AdminError):
        slug = type(exc).__name__.lower()
        body = ErrorBody(code=slug, message=str(exc))
        headers = BASIC_CHALLENGE if isinstance(exc, errors.Unauthorized) else None
        return JSONResponse(body.model_dump(), status_code=exc.http_status, headers=headers)
    if isinstance(exc, errors.Unavailable):
        # Which service, not its address or error text: those are the operator's (logged).
        body = ErrorBody(
            code="unavailable",
            message="Service unavailable: try again shortly",
            detail=f"{exc.service} does not answer",
        )
        return JSONResponse(body.model_dump(), status_code=503, headers={"Retry-After": "1"})
    return JSONResponse(ErrorBody(code="error", message=str(exc)).model_dump(), status_code=500)


class MessageOut(BaseModel):
    id: int
    batch_id: int
    account: str
    product: str
    kind: str
    phone: str
    content: str
    units: int
    cost: int
    state: MessageState
    error: str | None
    carrier: str
    carrier_ref: str | None
    created_at: datetime
    submitted_at: datetime | None
    done_at: datetime | None

    @classmethod
    def of(cls, m: Message) -> "MessageOut":
        return cls(
            id=m.id,
            batch_id=m.batch_id,
            account=m.account,
            product=m.product_id,
            kind=m.kind.value,
            phone=m.phone,
            content=m.content,
            units=m.units,
            cost=m.cost,
            state=m.state,
            error=m.error,
            carrier=m.carrier,
            carrier_ref=m.carrier_ref,
            created_at=m.created_at,
            submitted_at=m.submitted_at,
            done_at=m.done_at,
        )


class MessagePage(BaseModel):
    items: list[MessageOut]
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` for the next (older) page; null on the last page."
    )


def router(deps: SmsbaoDeps, store: AccountStore, messages: MessageReader) -> APIRouter:
    api = APIRouter(prefix="/v1", responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})

    current_account = bearer_account(deps)
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

    @api.get("/messages", response_model=MessagePage, summary="The caller's messages, newest first")
    async def list_messages(
        account: Caller,
        phone: Annotated[
            str | None, Query(description="Exact number as stored", pattern=PHONE_PATTERN)
        ] = None,
        text: Annotated[
            str | None,
            Query(description="Content contains this text", max_length=100, pattern=r"^[^\x00]*$"),
        ] = None,
        state: Annotated[MessageState | None, Query()] = None,
        batch: Annotated[
            int | None, Query(description="One request's messages", ge=1, le=MAX_ID)
        ] = None,
        since: Annotated[
            datetime | None, Query(description="Created at or after (ISO 8601)")
        ] = None,
        until: Annotated[datetime | None, Query(description="Created before (ISO 8601)")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, Query(description="From the previous page")] = None,
    ) -> MessagePage:
        before_id = cursor_id(cursor)
        found = await run_in_threadpool(
            messages.messages,
            MessageFilter(
                account_id=account.id,
                phone=phone,
                text=text,
                state=state,
                batch_id=batch,
                since=as_utc(since),
                until=as_utc(until),
                before_id=before_id,
                limit=limit + 1,
            ),
        )
        page = found[:limit]
        more = len(found) > limit
        return MessagePage(
            items=[MessageOut.of(m) for m in page],
            next_cursor=str(page[-1].id) if more and page else None,
        )

    @api.get("/messages/{message_id}", response_model=MessageOut, summary="One message")
    async def get_message(
        account: Caller, message_id: Annotated[int, Path(ge=1, le=MAX_ID)]
    ) -> MessageOut:
        found = await run_in_threadpool(messages.message, message_id)
        if found is None or found.account != account.username:
            raise errors.NotFound(f"no message {message_id} for this account")
        return MessageOut.of(found)

    return api


def install(app: FastAPI, deps: SmsbaoDeps, store: AccountStore, messages: MessageReader) -> None:
    app.include_router(router(deps, store, messages))

    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, errors.SmsgateError)
        return error_response(exc)

    app.add_exception_handler(errors.SmsgateError, handle)

    async def invalid(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
            for e in exc.errors()
        )
        body = ErrorBody(code="invalid_request", message="Invalid request", detail=detail)
        return JSONResponse(body.model_dump(), status_code=422)

    app.add_exception_handler(RequestValidationError, invalid)
