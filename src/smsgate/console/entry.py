"""Sign-in, sign-out, the language switch, and `/` (the signed-in role's home)."""

from __future__ import annotations

import time

from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from smsgate import errors
from smsgate.console import i18n
from smsgate.console.sessions import CUSTOMER, OPERATOR
from smsgate.console.web import LANG_COOKIE, Ctx, local_path
from smsgate.core.accounts import password_md5

HOME = {CUSTOMER: "/console", OPERATOR: "/ops"}


async def home(ctx: Ctx) -> Response:
    return ctx.redirect(HOME.get(ctx.session.role, "/signin"))


async def signin_form(ctx: Ctx) -> Response:
    if ctx.session.role:
        return ctx.redirect(HOME[ctx.session.role])
    return ctx.render(
        "signin.html", next=local_path(ctx.query("next")), role="", username="", error=""
    )


async def signin(ctx: Ctx) -> Response:
    role = ctx.field("role") if ctx.field("role") == OPERATOR else CUSTOMER
    username, password = ctx.field("username"), str(ctx.form.get("password") or "")
    try:
        if role == OPERATOR:
            ok = await run_in_threadpool(_operator_ok, ctx, username, password)
        else:
            await run_in_threadpool(ctx.deps.auth.sign_in, username, password_md5(password), ctx.ip)
            ok = True
    except errors.Rejected as refused:
        ok = False
        if refused.code is errors.ACCOUNT_INACTIVE:
            return _failed(ctx, role, username, "This account is disabled or expired.")
    if not ok:
        return _failed(ctx, role, username, "Wrong username or password, or too many attempts.")
    ctx.start_session(ctx.session.signed_in(role, username, time.time(), ctx.deps.session_seconds))
    return ctx.redirect(local_path(ctx.field("next")) or HOME[role])


def _operator_ok(ctx: Ctx, username: str, password: str) -> bool:
    # Operators share the throttle with accounts, under a name no account can have.
    return ctx.deps.auth.attempt(
        f"operator:{username}",
        ctx.ip,
        lambda: ctx.deps.operators.verify(username, password) is not None,
    )


def _failed(ctx: Ctx, role: str, username: str, why: str) -> Response:
    return ctx.render(
        "signin.html",
        status=401,
        next=local_path(ctx.field("next")),
        role=role,
        username=username,
        error=ctx.t(why),
    )


async def signout(ctx: Ctx) -> Response:
    ctx.start_session(ctx.session.signed_in("", "", time.time(), ctx.deps.session_seconds))
    return ctx.redirect("/signin")


async def language(ctx: Ctx) -> Response:
    chosen = ctx.query("to")
    response = RedirectResponse(local_path(ctx.query("next")) or "/", status_code=303)
    if chosen in i18n.LANGUAGES:
        response.set_cookie(LANG_COOKIE, chosen, max_age=365 * 86400, samesite="lax", path="/")
    return response


ROUTES = [
    ("/", "GET", home),
    ("/signin", "GET", signin_form),
    ("/signin", "POST", signin),
    ("/signout", "POST", signout),
    ("/lang", "GET", language),
]
