"""`GET /v1/carriers`: every carrier link's options (secrets shown as "set") and live
state per node, for operators, the same view as `smsgate carrier show --json`.

Operators authenticate with HTTP Basic: their console name and password (`smsgate
operator create`). A customer's ApiKey does not reach it. Guesses share the sign-in
throttle with the console (per name and source address), and the argon2 check runs off
the event loop in the bounded pool every password check uses.
"""

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from smsgate import errors
from smsgate.api.params import client_ip
from smsgate.api.smsbao import SmsbaoDeps
from smsgate.services.carrier_admin import CarrierAdmin
from smsgate.services.operators import OperatorService


class CarrierOut(BaseModel):
    name: str
    kind: str
    enabled: bool
    options: dict[str, Any]
    live: dict[str, dict[str, Any]]  # node -> its live status (at least `state`)


def operator_caller(
    deps: SmsbaoDeps, operators: OperatorService
) -> Callable[[Request], Awaitable[str]]:
    """A dependency: the operator named by `Authorization: Basic`, or 401."""

    async def current_operator(request: Request) -> str:
        name, password = _basic(request.headers.get("authorization", ""))
        ip = client_ip(request.scope, deps.trusted_proxies)

        def check() -> bool:
            return deps.auth.attempt(
                f"operator:{name}", ip, lambda: operators.verify(name, password) is not None
            )

        if not await anyio.to_thread.run_sync(check, limiter=deps.password_checks.limiter):
            raise errors.Unauthorized("wrong operator name or password, or too many attempts")
        return name

    return current_operator


def router(deps: SmsbaoDeps, operators: OperatorService, carriers: CarrierAdmin) -> APIRouter:
    api = APIRouter(prefix="/v1", tags=["operators"])
    Operator = Annotated[str, Depends(operator_caller(deps, operators))]

    @api.get(
        "/carriers",
        summary="Carrier links and their live state (operators)",
        responses={401: {"description": "Not an operator (HTTP Basic)"}},
    )
    async def list_carriers(_operator: Operator) -> list[CarrierOut]:
        views = await run_in_threadpool(carriers.list)
        builtin = await run_in_threadpool(carriers.live_builtin)
        out = [
            CarrierOut(name=n, kind="simulator", enabled=True, options={}, live=live)
            for n, live in builtin.items()
        ]
        out += [
            CarrierOut(name=v.name, kind=v.kind, enabled=v.enabled, options=v.options, live=v.live)
            for v in views
            if v.name not in builtin
        ]
        return out

    return api


def install(
    app: FastAPI, deps: SmsbaoDeps, operators: OperatorService, carriers: CarrierAdmin
) -> None:
    app.include_router(router(deps, operators, carriers))


def _basic(header: str) -> tuple[str, str]:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        raise errors.Unauthorized("send Authorization: Basic with an operator's name and password")
    try:
        name, sep, password = (
            base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        raise errors.Unauthorized("Authorization: Basic must be base64 of name:password") from None
    if not sep or not name:
        raise errors.Unauthorized("Authorization: Basic must be base64 of name:password")
    return name, password
