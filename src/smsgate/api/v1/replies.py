"""``/v1/replies``: the caller's user replies (MO), their pushes, and re-push.

Also ``POST /v1/simulator/replies``: make up a reply to the caller's messages, as a
phone user would send it, for development against the simulator; it answers only while
``simulator()`` says so (the server runs with the simulator as a carrier), else 404.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Path, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from smsgate import errors
from smsgate.api.smsbao import SmsbaoDeps
from smsgate.api.v1.paging import MAX_ID, PHONE_PATTERN, as_utc, bearer_account, cursor_id
from smsgate.api.v1.routes import ErrorBody
from smsgate.core.accounts import Account
from smsgate.core.pushes import PushAttempt
from smsgate.core.replies import ReplyFilter, ReplyRecord
from smsgate.core.states import PushState
from smsgate.services.inbound import InboundService


class PushOut(BaseModel):
    state: PushState
    attempts: int = Field(description="Attempts made in the current series")
    series: int = Field(description="1, then one more per re-push")
    next_at: datetime | None = Field(description="When the next attempt is due (pending)")
    last_error: str | None
    done_at: datetime | None


class ReplyOut(BaseModel):
    id: int
    phone: str
    dest: str | None = Field(description="Destination address: service number + extended code")
    content: str
    received_at: datetime
    matched_by: str | None = Field(description="ext_code or recent (last sender, 72 h)")
    optout: bool = Field(description="An opt-out keyword: the number is now on the opt-out list")
    push: PushOut | None

    @classmethod
    def of(cls, r: ReplyRecord) -> "ReplyOut":
        push = None
        if r.push_state is not None:
            push = PushOut(
                state=r.push_state,
                attempts=r.attempts,
                series=r.series,
                next_at=r.next_at,
                last_error=r.last_error,
                done_at=r.done_at,
            )
        return cls(
            id=r.id,
            phone=r.phone,
            dest=r.dest,
            content=r.content,
            received_at=r.received_at,
            matched_by=r.matched_by,
            optout=r.optout,
            push=push,
        )


class AttemptOut(BaseModel):
    """One push attempt as the account sees it: status and timing, never the receiver's
    answer (an MO URL must not be a way to read pages the gateway can reach)."""

    series: int
    attempt: int
    started_at: datetime
    at: datetime
    ok: bool
    status: int | None = Field(description="HTTP status; null for a timeout or connection error")
    error: str | None

    @classmethod
    def of(cls, a: PushAttempt) -> "AttemptOut":
        return cls(
            series=a.series,
            attempt=a.attempt,
            started_at=a.started_at,
            at=a.at,
            ok=a.ok,
            status=a.status,
            error=a.error,
        )


class ReplyDetail(ReplyOut):
    attempts: list[AttemptOut]


class ReplyPage(BaseModel):
    items: list[ReplyOut]
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` for the next (older) page; null on the last page."
    )


class SimulatedReply(BaseModel):
    phone: str = Field(
        description="The number replying: one the account sent to",
        max_length=40,
        pattern=r"^[^\x00-\x1f\x7f]*$",
    )
    content: str = Field(min_length=1, max_length=2000, pattern=r"^[^\x00]*$")


def router(
    deps: SmsbaoDeps,
    inbound: InboundService,
    wake: Callable[[], None],
    *,
    simulator: Callable[[], bool] | None,
) -> APIRouter:
    api = APIRouter(prefix="/v1", responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})

    current_account = bearer_account(deps)
    Caller = Annotated[Account, Depends(current_account)]

    @api.get("/replies", response_model=ReplyPage, summary="The caller's replies, newest first")
    async def list_replies(
        account: Caller,
        phone: Annotated[
            str | None, Query(description="Exact number as stored", pattern=PHONE_PATTERN)
        ] = None,
        state: Annotated[PushState | None, Query(description="Push state")] = None,
        since: Annotated[datetime | None, Query(description="Received at or after")] = None,
        until: Annotated[datetime | None, Query(description="Received before")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, Query(description="From the previous page")] = None,
    ) -> ReplyPage:
        f = ReplyFilter(
            account_id=account.id,
            phone=phone,
            state=state,
            since=as_utc(since),
            until=as_utc(until),
            before_id=cursor_id(cursor),
            limit=limit + 1,
        )
        found = await run_in_threadpool(inbound.replies, f)
        page = found[:limit]
        more = len(found) > limit and bool(page)
        return ReplyPage(
            items=[ReplyOut.of(r) for r in page], next_cursor=str(page[-1].id) if more else None
        )

    @api.get("/replies/{reply_id}", response_model=ReplyDetail, summary="One reply and its pushes")
    async def get_reply(
        account: Caller, reply_id: Annotated[int, Path(ge=1, le=MAX_ID)]
    ) -> ReplyDetail:
        found = await run_in_threadpool(inbound.reply, reply_id, account.username)
        attempts = await run_in_threadpool(inbound.attempts, reply_id)
        return ReplyDetail(
            **ReplyOut.of(found).model_dump(), attempts=[AttemptOut.of(a) for a in attempts]
        )

    @api.post(
        "/replies/{reply_id}/repush",
        response_model=ReplyOut,
        summary="Push a finished reply again (a new series: 1, 3, 10 minutes)",
        responses={409: {"model": ErrorBody}},
    )
    async def repush(account: Caller, reply_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> ReplyOut:
        found = await run_in_threadpool(inbound.repush, reply_id, account.username)
        wake()
        return ReplyOut.of(found)

    if simulator is None:
        return api
    simulator_on = simulator

    @api.post(
        "/simulator/replies",
        response_model=ReplyOut,
        status_code=201,
        summary="Simulate a user reply to the caller's messages",
        responses={422: {"model": ErrorBody}},
    )
    async def simulate_reply(account: Caller, body: SimulatedReply) -> ReplyOut:
        if not simulator_on():
            raise errors.NotFound(
                "the simulator API is off: no product routes to the simulator carrier"
            )
        dest = inbound.dest_for(account.ext_code)
        found = await run_in_threadpool(
            lambda: inbound.simulate(body.phone, body.content, dest, for_account=account.id)
        )
        wake()
        return ReplyOut.of(found)

    return api


def install(
    app: FastAPI,
    deps: SmsbaoDeps,
    inbound: InboundService,
    wake: Callable[[], None],
    *,
    simulator: Callable[[], bool] | None,
) -> None:
    """Add the routes; errors are rendered by the handler `routes.install` registers."""
    app.include_router(router(deps, inbound, wake, simulator=simulator))
