"""The SMSBao wire endpoints: plain, lean handlers answering a bare code as text/plain.

HTTP 200 always, body exactly the code (protocol.md). Send endpoints come with the
send path; this module serves /query and the shared plumbing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smsgate import errors
from smsgate.api.params import client_ip, read_params
from smsgate.core.accounts import Account, IPNetwork
from smsgate.services.auth import Authenticator
from smsgate.services.query import QueryService

TEXT = "text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True)
class SmsbaoDeps:
    auth: Authenticator
    query: QueryService
    trusted_proxies: tuple[IPNetwork, ...] = ()


def text(body: str) -> Response:
    return Response(body, media_type=TEXT)


async def authenticate(deps: SmsbaoDeps, request: Request, params: dict[str, str]) -> Account:
    """Account, credentials, status and IP checks; argon2 runs off the event loop."""
    u, p = params["u"], params["p"]
    ip = client_ip(request, deps.trusted_proxies)
    if deps.auth.is_fast(u, p):
        return deps.auth.authenticate(u, p, ip)
    return await run_in_threadpool(deps.auth.authenticate, u, p, ip)


def require(params: dict[str, str], *names: str) -> None:
    missing = [n for n in names if not params.get(n)]
    if missing:
        raise errors.Rejected(errors.PARAMS_INCOMPLETE, f"missing {', '.join(missing)}")


Handler = Callable[[SmsbaoDeps, Request, dict[str, str]], Awaitable[str]]


def endpoint(deps: SmsbaoDeps, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a handler: read parameters, render a refusal as its bare code."""

    async def serve(request: Request) -> Response:
        try:
            params = await read_params(request)
            return text(await handler(deps, request, params))
        except errors.Rejected as rejected:
            return text(rejected.code.wire)

    return serve


async def query(deps: SmsbaoDeps, request: Request, params: dict[str, str]) -> str:
    require(params, "u", "p")
    account = await authenticate(deps, request, params)
    balance = await run_in_threadpool(deps.query.balance, account)
    return f"0\n{balance.sent},{balance.remaining}"


def routes(deps: SmsbaoDeps) -> list[Route]:
    methods = ["GET", "POST"]
    serve_query = endpoint(deps, query)
    return [Route(path, serve_query, methods=methods) for path in ("/query", "/query/")]
