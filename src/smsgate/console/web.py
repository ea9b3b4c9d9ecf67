"""The console's request plumbing: sessions, roles, CSRF, language, rendering, flashes.

Every console endpoint is made by :func:`page`: it loads (or starts) the session, refuses
a visitor without the role the page needs (a GET is sent to the sign-in form, anything
else gets 403), refuses a form whose CSRF token is not the session's, and turns a refused
operation (an ``errors.SmsgateError``) into a message on the page it came from.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import jinja2
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from smsgate import errors
from smsgate.console import i18n
from smsgate.console.deps import ConsoleDeps
from smsgate.console.sessions import COOKIE, CUSTOMER, OPERATOR, Session, Signer
from smsgate.core import actors
from smsgate.core.accounts import is_usable

log = logging.getLogger("smsgate.console")
FLASH_COOKIE = "smsgate_flash"
LANG_COOKIE = "smsgate_lang"
TEMPLATES = Path(__file__).parent / "templates"
SAFE_METHODS = {"GET", "HEAD"}
# Everything from this origin, nothing inline but the server-drawn SVG, never in a frame
# (clickjacking); the Referer stays on this site (forms go back to the page they were on).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class Console:
    """The console's shared state: its dependencies, the cookie signer, the templates."""

    def __init__(self, deps: ConsoleDeps) -> None:
        self.deps = deps
        self.signer = Signer(deps.secret)
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.templates.filters["when"] = _when


class Ctx:
    """One request to the console, with its session and language."""

    def __init__(self, console: Console, request: Request, session: Session, form: FormData):
        self.console = console
        self.deps = console.deps
        self.request = request
        self.session = session
        self.form = form
        self.lang = i18n.pick(
            request.cookies.get(LANG_COOKIE), request.headers.get("accept-language")
        )
        self._new_session: Session | None = None

    @property
    def user(self) -> str:
        return self.session.user

    @property
    def ip(self) -> str:
        return self.request.client.host if self.request.client else ""

    def t(self, text: str) -> str:
        return i18n.translate(text, self.lang)

    def field(self, name: str) -> str:
        value = self.form.get(name)
        return value.strip() if isinstance(value, str) else ""

    def query(self, name: str) -> str:
        return self.request.query_params.get(name, "").strip()

    def start_session(self, session: Session) -> None:
        self.session = self._new_session = session

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        flash = _read_flash(self.request)
        html = self.console.templates.get_template(template).render(
            t=self.t,
            lang=self.lang,
            session=self.session,
            csrf=self.session.csrf,
            path=self.request.url.path,
            flash=flash,
            status=status,
            simulator=self.deps.simulator_on(),
            **values,
        )
        response = HTMLResponse(html, status_code=status)
        if flash:
            response.delete_cookie(FLASH_COOKIE, path="/")
        return response

    def redirect(self, url: str, ok: str | None = None, error: str | None = None) -> Response:
        response = RedirectResponse(url, status_code=303)
        if ok or error:
            flash = json.dumps({"ok": ok or "", "error": error or ""})
            response.set_cookie(
                FLASH_COOKIE, urllib.parse.quote(flash), httponly=True, samesite="lax", path="/"
            )
        return response

    def back(self, ok: str | None = None, error: str | None = None) -> Response:
        """To the page the form was on, as the browser's Referer names it (its path and
        query only: never another site); else home."""
        referer = urllib.parse.urlsplit(self.request.headers.get("referer", ""))
        same_site = referer.netloc == self.request.headers.get("host", "")
        target = referer.path + (f"?{referer.query}" if referer.query else "")
        return self.redirect(_local(target) if same_site else "/", ok, error)


Handler = Callable[[Ctx], Awaitable[Response]]


def page(
    console: Console, role: str | None, handler: Handler
) -> Callable[[Request], Awaitable[Response]]:
    """A console endpoint: ``role`` is CUSTOMER, OPERATOR, or None for anyone."""

    async def endpoint(request: Request) -> Response:
        now = time.time()
        lifetime = console.deps.session_seconds
        loaded = console.signer.load(request.cookies.get(COOKIE), now)
        session = loaded if loaded is not None and _still_valid(console, loaded) else None
        fresh = session is None
        session = session or Session.anonymous(now, lifetime)
        form = FormData() if request.method in SAFE_METHODS else await request.form()
        ctx = Ctx(console, request, session, form)
        if fresh:
            ctx.start_session(session)
        try:
            response = await _guarded(ctx, role, handler)
        finally:
            await form.close()  # an uploaded file's spool
        if ctx._new_session is not None:
            _set_session_cookie(response, console.signer.dump(ctx._new_session), request, lifetime)
        response.headers.update(SECURITY_HEADERS)
        return response

    return endpoint


async def _guarded(ctx: Ctx, role: str | None, handler: Handler) -> Response:
    safe = ctx.request.method in SAFE_METHODS
    if role is not None and ctx.session.role != role:
        if ctx.session.role == "" and safe:
            target = urllib.parse.quote(ctx.request.url.path)
            return RedirectResponse(f"/signin?next={target}", status_code=303)
        return ctx.render("denied.html", status=403 if ctx.session.role else 401)
    if not safe and not ctx.session.csrf_ok(str(ctx.form.get("csrf") or "")):
        return ctx.render("denied.html", status=403, reason="csrf")
    # What this request changes is audited under its user (anonymous pages change nothing).
    who = f"{ctx.session.role}:{ctx.session.user}" if ctx.session.role else actors.SYSTEM
    try:
        with actors.acting_as(who):
            return await handler(ctx)
    except errors.SmsgateError as refused:
        if safe:
            status = 404 if isinstance(refused, errors.NotFound) else 400
            return ctx.render("denied.html", status=status, reason=_message(refused, ctx.lang))
        return ctx.back(error=_message(refused, ctx.lang))


def _message(refused: errors.SmsgateError, lang: str) -> str:
    if isinstance(refused, errors.Rejected):
        code = refused.code
        text = code.message_zh if lang == i18n.ZH else code.message
        detail = f": {refused.detail}" if refused.detail else ""
        return f"{code.wire} {text}{detail}"
    return str(refused)


def _still_valid(console: Console, session: Session) -> bool:
    """A signed-in session ends with its account (gone, disabled, expired) or operator."""
    if session.role == CUSTOMER:
        account = console.deps.snapshot.current.accounts.get(session.user)
        return account is not None and is_usable(account, console.deps.clock.now())
    if session.role == OPERATOR:
        return console.deps.store.operator(session.user) is not None
    return True


def _set_session_cookie(response: Response, value: str, request: Request, lifetime: float) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=int(lifetime),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def _read_flash(request: Request) -> Mapping[str, str]:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return {}
    try:
        data = json.loads(urllib.parse.unquote(raw))
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: str(v) for k, v in data.items() if k in ("ok", "error") and v}


def _local(target: str) -> str:
    """A path on this site, or "" (a redirect never leaves it)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return ""
    return target


def local_path(target: str) -> str:
    return _local(target)


def _when(value: Any) -> str:
    if value is None:
        return "-"
    return value.strftime("%Y-%m-%d %H:%M:%S") if hasattr(value, "strftime") else str(value)
