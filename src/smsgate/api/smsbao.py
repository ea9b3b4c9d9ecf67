"""The SMSBao wire endpoints, served by a lean ASGI front before the rest of the app.

HTTP 200 always, body exactly the code (protocol.md): /sms, /wsms, /voice, /query.
These paths carry the traffic, and need none of what the framework around the JSON
API and the docs offers (routing tables, middleware, request objects): the front
matches the path in one dict look-up and answers with two ASGI messages. Every other
path goes on to the wrapped app. No log call per request here: that was a quarter of
the event loop's time under load (an opt-in access log lives in `api/access_log.py`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio.to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from smsgate import errors
from smsgate.api.absolute_form import origin_form
from smsgate.api.params import client_ip, decode_content, read_params
from smsgate.core.accounts import Account, IPNetwork
from smsgate.core.compat import provider_code
from smsgate.core.messages import Kind
from smsgate.core.units import check_characters
from smsgate.services.accept import AcceptService, SendRequest
from smsgate.services.auth import Authenticator
from smsgate.services.query import QueryService

TEXT = b"text/plain; charset=utf-8"
METHODS = frozenset({"GET", "HEAD", "POST"})


class PasswordChecks:
    """The queue password checks wait in: at most ``at_once`` run (each in a thread, argon2
    takes 64 MiB), the others wait as suspended requests, which cost next to nothing."""

    def __init__(self, at_once: int = 2) -> None:
        self.limiter = anyio.CapacityLimiter(at_once)


@dataclass(frozen=True, slots=True)
class SmsbaoDeps:
    auth: Authenticator
    query: QueryService
    accept: AcceptService
    trusted_proxies: tuple[IPNetwork, ...] = ()
    password_checks: PasswordChecks = field(default_factory=PasswordChecks)


async def authenticate(deps: SmsbaoDeps, ip: str, params: dict[str, str]) -> Account:
    """Account, credentials, status and IP checks; argon2 runs off the event loop."""
    u, p = params["u"], params["p"]
    if deps.auth.is_fast(u, p):
        return deps.auth.authenticate(u, p, ip)
    return await anyio.to_thread.run_sync(
        deps.auth.authenticate, u, p, ip, limiter=deps.password_checks.limiter
    )


def require(params: dict[str, str], *names: str) -> None:
    missing = [n for n in names if not params.get(n, "").strip()]
    if missing:
        raise errors.Rejected(errors.PARAMS_INCOMPLETE, f"missing {', '.join(missing)}")


Handler = Callable[[SmsbaoDeps, str, dict[str, str]], Awaitable[str]]


def answered_for(account: Account, rejected: errors.Rejected) -> errors.Rejected:
    """A refusal as this account's client is answered (its provider-codes setting)."""
    if not account.provider_codes:
        return rejected
    return errors.Rejected(provider_code(rejected.code), rejected.detail)


async def query(deps: SmsbaoDeps, ip: str, params: dict[str, str]) -> str:
    require(params, "u", "p")
    account = await authenticate(deps, ip, params)
    try:
        balance = await anyio.to_thread.run_sync(deps.query.balance, account)
    except errors.Rejected as rejected:
        raise answered_for(account, rejected) from None
    return f"0\n{balance.sent},{balance.remaining}"


def sender(kind: Kind) -> Handler:
    async def send(deps: SmsbaoDeps, ip: str, params: dict[str, str]) -> str:
        require(params, "u", "p", "m", "c")
        content = decode_content(params["c"])
        check_characters(content)  # a malformed parameter: -1, before anything else
        account = await authenticate(deps, ip, params)
        send_request = SendRequest(
            kind=kind,
            product=params.get("g", ""),
            phones=params["m"],
            content=content,
            client_ip=ip,
        )
        try:
            await deps.accept.accept(account, send_request)
        except errors.Rejected as rejected:
            raise answered_for(account, rejected) from None
        return "0"

    return send


PATHS: dict[str, tuple[str, ...]] = {
    "sms": ("/sms", "/sms/"),
    "intl": ("/wsms", "/wsms/", "/wsms/sms"),  # /wsms/sms: a known client bug
    "voice": ("/voice", "/voice/"),
    "query": ("/query", "/query/"),
}


class SmsbaoFront:
    """The outermost ASGI callable: the SMSBao paths here, everything else to ``app``.

    Absolute-form targets are turned into origin-form first, for every path.
    """

    def __init__(self, deps: SmsbaoDeps, app: ASGIApp) -> None:
        self._deps = deps
        self._app = app
        handlers: dict[str, Handler] = {
            "sms": sender(Kind.SMS),
            "intl": sender(Kind.INTL),
            "voice": sender(Kind.VOICE),
            "query": query,
        }
        self._routes = {path: handlers[name] for name, paths in PATHS.items() for path in paths}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        scope = origin_form(scope)
        handler = self._routes.get(scope["path"])
        if handler is None:
            await self._app(scope, receive, send)
            return
        if scope["method"] not in METHODS:
            await _answer(send, 405, b"Method Not Allowed", [(b"allow", b"GET, HEAD, POST")])
            return
        try:
            params = await read_params(scope, receive)
            ip = client_ip(scope, self._deps.trusted_proxies)
            body = (await handler(self._deps, ip, params)).encode()
        except errors.Rejected as rejected:
            body = rejected.code.wire.encode()
        await _answer(send, 200, b"" if scope["method"] == "HEAD" else body, length=len(body))


async def _answer(
    send: Send,
    status: int,
    body: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
    *,
    length: int | None = None,
) -> None:
    headers = [
        (b"content-type", TEXT),
        (b"content-length", str(len(body) if length is None else length).encode()),
        *(extra or ()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
