"""The operator's pages: accounts, template review, sensitive words, carriers,
unmatched replies and the audit log. Each change is audited once, by the service that
makes it, under the operator's name (``operator:NAME``, core/actors.py)."""

from __future__ import annotations

from datetime import UTC, datetime, time

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.responses import Response

from smsgate import errors
from smsgate.console.customer import path_id
from smsgate.console.web import Ctx
from smsgate.core import actors
from smsgate.core.accounts import TemplateStatus
from smsgate.core.replies import ReplyFilter

MAX_WORDS_FILE = 1_000_000


def _name(ctx: Ctx) -> str:
    return str(ctx.request.path_params.get("name", ""))


async def accounts(ctx: Ctx) -> Response:
    return await _accounts_page(ctx, None)


async def _accounts_page(ctx: Ctx, created: object) -> Response:
    found = await run_in_threadpool(ctx.deps.admin.accounts)
    return ctx.render("ops/accounts.html", items=found, created=created)


async def create_account(ctx: Ctx) -> Response:
    balance = ctx.field("balance") or "0"
    if not balance.isdigit():
        raise errors.InvalidInput(ctx.t("The opening balance is a whole number."))
    created = await run_in_threadpool(
        ctx.deps.admin.create_account,
        ctx.field("username"),
        str(ctx.form.get("password") or ""),
        int(balance),
    )
    return await _accounts_page(ctx, created)  # its ApiKey is shown once, here


async def account(ctx: Ctx) -> Response:
    name = _name(ctx)
    info = await run_in_threadpool(ctx.deps.admin.show, name)
    rows = await run_in_threadpool(ctx.deps.store.ledger, name, 50)
    products = await run_in_threadpool(ctx.deps.admin.products)
    return ctx.render("ops/account.html", info=info, a=info.account, rows=rows, products=products)


async def topup(ctx: Ctx) -> Response:
    name, amount = _name(ctx), ctx.field("amount")
    if not amount.isdigit():
        raise errors.InvalidInput(ctx.t("A top-up is a positive whole number of units."))
    balance = await run_in_threadpool(
        ctx.deps.admin.topup, name, int(amount), ctx.field("ref") or None
    )
    return ctx.back(ok=f"{ctx.t('Topped up')}: +{amount}, {ctx.t('balance')} {balance}")


async def set_status(ctx: Ctx) -> Response:
    name, enabled = _name(ctx), ctx.field("enabled") == "1"
    await run_in_threadpool(lambda: ctx.deps.admin.configure(name, enabled=enabled))
    return ctx.back(ok=ctx.t("Saved."))


async def set_expiry(ctx: Ctx) -> Response:
    name, day = _name(ctx), ctx.field("expires")
    if day:
        try:
            when = datetime.combine(datetime.fromisoformat(day).date(), time.max, UTC)
        except ValueError:
            raise errors.InvalidInput(f"a date is YYYY-MM-DD; got {day!r}") from None
        await run_in_threadpool(lambda: ctx.deps.admin.configure(name, expires_at=when))
    else:
        await run_in_threadpool(lambda: ctx.deps.admin.configure(name, clear_expiry=True))
    return ctx.back(ok=ctx.t("Saved."))


async def grant(ctx: Ctx) -> Response:
    name = _name(ctx)
    ids = [str(v) for v in ctx.form.getlist("product") if str(v).strip()]
    await run_in_threadpool(ctx.deps.admin.grant_products, name, ids)
    return ctx.back(ok=ctx.t("Saved."))


async def add_signature(ctx: Ctx) -> Response:
    name = _name(ctx)
    inner = await run_in_threadpool(ctx.deps.admin.add_signature, name, ctx.field("text"))
    return ctx.back(ok=f"{ctx.t('Signature added')}: 【{inner}】")


async def templates(ctx: Ctx) -> Response:
    pending = await run_in_threadpool(ctx.deps.policy.templates, TemplateStatus.PENDING, None)
    return ctx.render("ops/templates.html", items=pending)


async def review(ctx: Ctx) -> Response:
    template_id, approve = path_id(ctx), ctx.field("decision") == "approve"
    note = ctx.field("note") or None
    await run_in_threadpool(ctx.deps.policy.review, template_id, approve, note)
    return ctx.back(ok=ctx.t("Approved.") if approve else ctx.t("Rejected."))


async def words(ctx: Ctx, tested: tuple[str, str | None] | None = None) -> Response:
    found = await run_in_threadpool(ctx.deps.admin.words)
    return ctx.render("ops/words.html", items=found, tested=tested)


async def add_words(ctx: Ctx) -> Response:
    given = ctx.field("words").split()
    added = await run_in_threadpool(
        ctx.deps.admin.add_words, given, ctx.field("category") or "general"
    )
    return ctx.back(ok=f"{ctx.t('Words added')}: {added}")


async def import_words(ctx: Ctx) -> Response:
    upload = ctx.form.get("file")
    if not isinstance(upload, UploadFile):
        raise errors.InvalidInput(ctx.t("Choose a file: one word a line."))
    data = await upload.read(MAX_WORDS_FILE + 1)
    if len(data) > MAX_WORDS_FILE:
        raise errors.InvalidInput(ctx.t("The file is too large (1 MB at most)."))
    try:
        lines = data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise errors.InvalidInput(ctx.t("The file is not UTF-8 text.")) from None
    added = await run_in_threadpool(
        ctx.deps.admin.add_words, lines, ctx.field("category") or "general"
    )
    return ctx.back(ok=f"{ctx.t('Words added')}: {added}")


async def test_words(ctx: Ctx) -> Response:
    text = ctx.field("text")
    word = ctx.deps.snapshot.current.words.find(text)
    return await words(ctx, (text, word))


async def carriers(ctx: Ctx) -> Response:
    configured = await run_in_threadpool(ctx.deps.carriers.list)
    builtin = await run_in_threadpool(ctx.deps.carriers.live_builtin)
    return ctx.render("ops/carriers.html", items=configured, builtin=builtin)


async def replies(ctx: Ctx) -> Response:
    found = await run_in_threadpool(
        ctx.deps.inbound.replies, ReplyFilter(unmatched=True, limit=100)
    )
    return ctx.render("ops/replies.html", items=found)


async def assign(ctx: Ctx) -> Response:
    mo_id, name = path_id(ctx), ctx.field("account")
    info = await run_in_threadpool(ctx.deps.admin.show, name)
    await run_in_threadpool(ctx.deps.inbound.assign, mo_id, info.account.id, actors.current())
    ctx.deps.wake_pushes()
    return ctx.back(ok=f"{ctx.t('Assigned to')} {name}")


async def audit_log(ctx: Ctx) -> Response:
    before = ctx.query("before")
    rows = await run_in_threadpool(
        ctx.deps.store.audit_log, 100, int(before) if before.isdigit() else None
    )
    return ctx.render("ops/audit.html", rows=rows, more=rows[-1].id if len(rows) == 100 else None)


async def words_page(ctx: Ctx) -> Response:
    return await words(ctx)


ROUTES = [
    ("/ops", "GET", accounts),
    ("/ops/accounts", "POST", create_account),
    ("/ops/accounts/{name}", "GET", account),
    ("/ops/accounts/{name}/topup", "POST", topup),
    ("/ops/accounts/{name}/status", "POST", set_status),
    ("/ops/accounts/{name}/expiry", "POST", set_expiry),
    ("/ops/accounts/{name}/products", "POST", grant),
    ("/ops/accounts/{name}/signatures", "POST", add_signature),
    ("/ops/templates", "GET", templates),
    ("/ops/templates/{id}/review", "POST", review),
    ("/ops/words", "GET", words_page),
    ("/ops/words", "POST", add_words),
    ("/ops/words/import", "POST", import_words),
    ("/ops/words/test", "POST", test_words),
    ("/ops/carriers", "GET", carriers),
    ("/ops/replies", "GET", replies),
    ("/ops/replies/{id}/assign", "POST", assign),
    ("/ops/audit", "GET", audit_log),
]
