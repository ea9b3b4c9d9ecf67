"""The SMSBao wire endpoints: plain, lean handlers answering a bare code as text/plain.

HTTP 200 always, body exactly the code (protocol.md): /sms, /wsms, /voice, /query.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smsgate import errors
from smsgate.api.params import client_ip, decode_content, read_params
from smsgate.core.accounts import Account, IPNetwork
from smsgate.core.messages import Kind
from smsgate.services.accept import AcceptService, SendRequest
from smsgate.services.auth import Authenticator
from smsgate.services.query import QueryService

TEXT = "text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True)
class SmsbaoDeps:
    auth: Authenticator
    query: QueryService
    accept: AcceptService
    trusted_proxies: tuple[IPNetwork, ...] = ()


def text(body: str) -> Response:
    return Response(body, media_type=TEXT)


async def authenticate(deps: SmsbaoDeps, ip: str, params: dict[str, str]) -> Account:
    """Account, credentials, status and IP checks; argon2 runs off the event loop."""
    u, p = params["u"], params["p"]
    if deps.auth.is_fast(u, p):
        return deps.auth.authenticate(u, p, ip)
    return await run_in_threadpool(deps.auth.authenticate, u, p, ip)


def require(params: dict[str, str], *names: str) -> None:
    missing = [n for n in names if not params.get(n, "").strip()]
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
    account = await authenticate(deps, client_ip(request, deps.trusted_proxies), params)
    balance = await run_in_threadpool(deps.query.balance, account)
    return f"0\n{balance.sent},{balance.remaining}"


def sender(kind: Kind) -> Handler:
    async def send(deps: SmsbaoDeps, request: Request, params: dict[str, str]) -> str:
        require(params, "u", "p", "m", "c")
        ip = client_ip(request, deps.trusted_proxies)
        account = await authenticate(deps, ip, params)
        send_request = SendRequest(
            kind=kind,
            product=params.get("g", ""),
            phones=params["m"],
            content=decode_content(params["c"]),
            client_ip=ip,
        )
        await deps.accept.accept(account, send_request)
        return "0"

    return send


PATHS: dict[str, tuple[str, ...]] = {
    "sms": ("/sms", "/sms/"),
    "intl": ("/wsms", "/wsms/", "/wsms/sms"),  # /wsms/sms: a known client bug
    "voice": ("/voice", "/voice/"),
    "query": ("/query", "/query/"),
}


def routes(deps: SmsbaoDeps) -> list[Route]:
    handlers: dict[str, Handler] = {
        "sms": sender(Kind.SMS),
        "intl": sender(Kind.INTL),
        "voice": sender(Kind.VOICE),
        "query": query,
    }
    return [
        Route(path, endpoint(deps, handlers[name]), methods=["GET", "POST"])
        for name, paths in PATHS.items()
        for path in paths
    ]
