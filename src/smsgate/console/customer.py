"""The customer's pages: dashboard, send, messages, replies, templates, keys, settings,
ledger. Every read and write names the signed-in account: no page takes an account
from the request."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from smsgate import errors
from smsgate.console.chart import STATES, daily_bars
from smsgate.console.web import Ctx
from smsgate.core.accounts import Account
from smsgate.core.messages import Kind, MessageFilter
from smsgate.core.replies import ReplyFilter
from smsgate.core.reports import daily_summaries, delivery_rate
from smsgate.core.states import MessageState, PushState
from smsgate.services.accept import SendRequest

CHART_DAYS = 30
S = TypeVar("S", MessageState, PushState)
PAGE = 50
MAX_SEARCH = 100  # characters of a content search


def account(ctx: Ctx) -> Account:
    found = ctx.deps.snapshot.current.accounts.get(ctx.user)
    if found is None:  # created a moment ago: the snapshot has not caught up yet
        return ctx.deps.admin.show(ctx.user).account
    return found


def path_id(ctx: Ctx, name: str = "id") -> int:
    raw = str(ctx.request.path_params.get(name, ""))
    if not raw.isdigit() or len(raw) > 18:
        raise errors.NotFound(f"no such item: {raw!r}")
    return int(raw)


async def dashboard(ctx: Ctx) -> Response:
    info = await run_in_threadpool(ctx.deps.admin.show, ctx.user)
    today = ctx.deps.clock.now().date()
    days = [today - timedelta(days=n) for n in range(CHART_DAYS - 1, -1, -1)]
    since = datetime.combine(days[0], datetime.min.time(), UTC)
    counts = await run_in_threadpool(ctx.deps.store.daily_counts, info.account.id, since)
    summaries = daily_summaries(counts, days)
    month: dict[str, int] = {}
    for s in summaries:
        for state, n in s.states.items():
            month[state] = month.get(state, 0) + n
    rate = delivery_rate(month)
    return ctx.render(
        "customer/dashboard.html",
        info=info,
        sent_today=summaries[-1].total,
        rate=None if rate is None else f"{rate:.1%}",
        chart=daily_bars(summaries, ctx.t("Messages per day, last 30 days")),
        summaries=summaries,
        states=STATES,
    )


async def send_form(ctx: Ctx) -> Response:
    return ctx.render("customer/send.html", products=_products(ctx))


async def send(ctx: Ctx) -> Response:
    request = SendRequest(
        Kind.SMS, ctx.field("product"), ctx.field("phones"), ctx.field("content"), ctx.ip
    )
    batch = await ctx.deps.accept.accept(account(ctx), request)
    return ctx.redirect("/console/messages", ok=f"{ctx.t('Accepted: batch')} {batch}")


def _products(ctx: Ctx) -> list[object]:
    mine = account(ctx)
    return [
        p
        for p in sorted(ctx.deps.snapshot.current.products.values(), key=lambda p: p.id)
        if not p.private or p.id in mine.products
    ]


async def messages(ctx: Ctx) -> Response:
    f = MessageFilter(
        account_id=account(ctx).id,
        phone=ctx.query("phone") or None,
        text=ctx.query("text").replace("\x00", "")[:MAX_SEARCH] or None,  # no NUL in SQL text
        state=_choice(MessageState, ctx.query("state")),
        since=_day(ctx.query("since")),
        until=_day(ctx.query("until"), next_day=True),
        before_id=int(ctx.query("before")) if ctx.query("before").isdigit() else None,
        limit=PAGE + 1,
    )
    found = await run_in_threadpool(ctx.deps.messages.messages, f)
    more = found[PAGE - 1].id if len(found) > PAGE else None
    return ctx.render(
        "customer/messages.html",
        items=found[:PAGE],
        more=more,
        states=[s.value for s in MessageState],
        q={k: ctx.query(k) for k in ("phone", "text", "state", "since", "until")},
    )


async def message(ctx: Ctx) -> Response:
    found = await run_in_threadpool(ctx.deps.messages.message, path_id(ctx))
    if found is None or found.account != ctx.user:
        raise errors.NotFound(ctx.t("No such message for this account."))
    timeline = [("accepted", found.created_at)]
    if found.submitted_at:
        timeline.append(("submitted", found.submitted_at))
    if found.done_at:
        timeline.append((found.state.value, found.done_at))
    return ctx.render("customer/message.html", m=found, timeline=timeline)


async def replies(ctx: Ctx) -> Response:
    f = ReplyFilter(
        account_id=account(ctx).id,
        phone=ctx.query("phone") or None,
        state=_choice(PushState, ctx.query("state")),
        limit=PAGE,
    )
    found = await run_in_threadpool(ctx.deps.inbound.replies, f)
    return ctx.render(
        "customer/replies.html",
        items=found,
        states=[s.value for s in PushState],
        q={k: ctx.query(k) for k in ("phone", "state")},
    )


async def reply(ctx: Ctx) -> Response:
    mo_id = path_id(ctx)
    found = await run_in_threadpool(ctx.deps.inbound.reply, mo_id, ctx.user)
    attempts = await run_in_threadpool(ctx.deps.inbound.attempts, mo_id)
    return ctx.render("customer/reply.html", r=found, attempts=attempts)


async def repush(ctx: Ctx) -> Response:
    mo_id = path_id(ctx)
    await run_in_threadpool(ctx.deps.inbound.repush, mo_id, ctx.user)
    ctx.deps.wake_pushes()
    return ctx.redirect(f"/console/replies/{mo_id}", ok=ctx.t("Pushing again."))


async def templates(ctx: Ctx) -> Response:
    found = await run_in_threadpool(ctx.deps.policy.templates, None, ctx.user)
    return ctx.render("customer/templates.html", items=found, products=_products(ctx))


async def apply_template(ctx: Ctx) -> Response:
    template_id = await run_in_threadpool(
        ctx.deps.policy.apply_template, ctx.user, ctx.field("product"), ctx.field("text")
    )
    return ctx.back(ok=f"{ctx.t('Template submitted for review')}: #{template_id}")


async def keys(ctx: Ctx) -> Response:
    return await _keys_page(ctx, None)


async def _keys_page(ctx: Ctx, new_key: str | None) -> Response:
    found = await run_in_threadpool(ctx.deps.store.api_keys, ctx.user)
    return ctx.render("customer/keys.html", items=found, new_key=new_key)


async def create_key(ctx: Ctx) -> Response:
    key = await run_in_threadpool(ctx.deps.admin.new_api_key, ctx.user)
    return await _keys_page(ctx, key)  # shown once, on this answer only


async def revoke_key(ctx: Ctx) -> Response:
    done = await run_in_threadpool(
        ctx.deps.store.revoke_api_key, ctx.user, path_id(ctx), ctx.deps.clock.now()
    )
    if not done:
        raise errors.NotFound(ctx.t("No such ApiKey, or it is revoked already."))
    return ctx.redirect("/console/keys", ok=ctx.t("ApiKey revoked."))


async def settings(ctx: Ctx) -> Response:
    info = await run_in_threadpool(ctx.deps.admin.show, ctx.user)
    probe = ctx.request.query_params.get("probe", "")
    return ctx.render(
        "customer/settings.html",
        a=info.account,
        products=_products(ctx),
        probe=probe,
    )


async def allow_ip(ctx: Ctx) -> Response:
    await run_in_threadpool(ctx.deps.admin.allow_ip, ctx.user, ctx.field("cidr").split())
    return ctx.redirect("/console/settings", ok=ctx.t("Saved."))


async def disallow_ip(ctx: Ctx) -> Response:
    await run_in_threadpool(ctx.deps.admin.disallow_ip, ctx.user, [ctx.field("cidr")])
    return ctx.redirect("/console/settings", ok=ctx.t("Saved."))


async def set_mo_url(ctx: Ctx) -> Response:
    await run_in_threadpool(lambda: ctx.deps.admin.configure(ctx.user, mo_url=ctx.field("url")))
    return ctx.redirect("/console/settings", ok=ctx.t("Saved."))


async def test_push(ctx: Ctx) -> Response:
    info = await run_in_threadpool(ctx.deps.admin.show, ctx.user)
    url = info.account.mo_url
    if not url:
        raise errors.InvalidInput(ctx.t("Set an MO push URL first."))
    probe = await ctx.deps.test_push(url)
    shown = str(probe.status) if probe.status is not None else (probe.error or ctx.t("no answer"))
    text = f"{ctx.t('Test push')}: {shown}, {probe.millis:.0f} ms"
    if probe.status is not None and 200 <= probe.status < 300:
        return ctx.redirect("/console/settings", ok=text)
    return ctx.redirect("/console/settings", error=text)


async def ledger(ctx: Ctx) -> Response:
    info = await run_in_threadpool(ctx.deps.admin.show, ctx.user)
    rows = await run_in_threadpool(ctx.deps.store.ledger, ctx.user, 200)
    return ctx.render("customer/ledger.html", info=info, rows=rows)


def _choice(kind: type[S], value: str) -> S | None:
    try:
        return kind(value) if value else None
    except ValueError:
        raise errors.InvalidInput(f"unknown state {value!r}") from None


def _day(value: str, *, next_day: bool = False) -> datetime | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise errors.InvalidInput(f"a date is YYYY-MM-DD; got {value!r}") from None
    start = datetime.combine(day, datetime.min.time(), UTC)
    return start + timedelta(days=1) if next_day else start


ROUTES = [
    ("/console", "GET", dashboard),
    ("/console/send", "GET", send_form),
    ("/console/send", "POST", send),
    ("/console/messages", "GET", messages),
    ("/console/messages/{id}", "GET", message),
    ("/console/replies", "GET", replies),
    ("/console/replies/{id}", "GET", reply),
    ("/console/replies/{id}/repush", "POST", repush),
    ("/console/templates", "GET", templates),
    ("/console/templates", "POST", apply_template),
    ("/console/keys", "GET", keys),
    ("/console/keys", "POST", create_key),
    ("/console/keys/{id}/revoke", "POST", revoke_key),
    ("/console/settings", "GET", settings),
    ("/console/settings/allow-ip", "POST", allow_ip),
    ("/console/settings/disallow-ip", "POST", disallow_ip),
    ("/console/settings/mo-url", "POST", set_mo_url),
    ("/console/settings/test-push", "POST", test_push),
    ("/console/ledger", "GET", ledger),
]
