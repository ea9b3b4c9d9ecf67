"""Operator commands for what may be sent: templates, frequency caps, opt-outs;
and `smsgate messages` to read what was sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table

from smsgate import errors
from smsgate.cli import out
from smsgate.cli_admin import Name, admin, parse_when
from smsgate.core.accounts import TemplateStatus
from smsgate.core.messages import MessageFilter
from smsgate.core.states import MessageState
from smsgate.settings import Settings

template_app = typer.Typer(
    help="Templates (报备): apply, approve, reject. Template-required products accept only "
    "content matching an approved template (54).",
    no_args_is_help=True,
)
optout_app = typer.Typer(help="Numbers that replied TD/退订 (code 57).", no_args_is_help=True)

Cap = Annotated[int | None, typer.Option(min=0, help="0 blocks; see --reset.")]


def register(app: typer.Typer) -> None:
    from smsgate.cli_admin import account_app, product_app

    app.add_typer(template_app, name="template")
    app.add_typer(optout_app, name="optout")
    account_app.command("limits")(account_limits)
    product_app.command("limits")(product_limits)
    app.command("messages")(messages)


@template_app.command("add")
def template_add(
    name: Name,
    text: Annotated[str, typer.Argument(help="e.g. '【短信宝】您的验证码是{code}'")],
    product: Annotated[str, typer.Option("--product", help="Product id (`g`).")] = "general",
) -> None:
    """Apply for a template on a product (pending until approved)."""
    with admin() as (_, policy):
        template_id = policy.apply_template(name, product, text)
    out.print(f"template #{template_id} is pending: `smsgate template approve {template_id}`")


@template_app.command("approve")
def template_approve(
    template_id: Annotated[int, typer.Argument(metavar="ID")],
    note: Annotated[str | None, typer.Option(help="Kept with the review.")] = None,
) -> None:
    """Approve a template: matching content is accepted on its product."""
    with admin() as (_, policy):
        record = policy.review(template_id, approve=True, note=note)
    out.print(f"template #{record.id} approved for {record.username} on {record.product_id}")


@template_app.command("reject")
def template_reject(
    template_id: Annotated[int, typer.Argument(metavar="ID")],
    note: Annotated[str | None, typer.Option(help="Why, for the customer.")] = None,
) -> None:
    """Reject a template (an approved one stops matching)."""
    with admin() as (_, policy):
        record = policy.review(template_id, approve=False, note=note)
    out.print(f"template #{record.id} rejected")


@template_app.command("list")
def template_list(
    status: Annotated[TemplateStatus | None, typer.Option(help="Only this status.")] = None,
    account: Annotated[str | None, typer.Option(help="Only this account.")] = None,
) -> None:
    """Templates and their review status."""
    with admin() as (_, policy):
        rows = policy.templates(status=status, username=account)
    table = Table("id", "account", "product", "status", "text", "note")
    for r in rows:
        table.add_row(str(r.id), r.username, r.product_id, r.status.value, r.text, r.note or "")
    out.print(table if rows else "no templates")


def account_limits(
    name: Name,
    per_minute: Cap = None,
    per_hour: Cap = None,
    per_day: Cap = None,
    daily_cap: Annotated[
        int | None, typer.Option(min=0, help="Messages per account per day.")
    ] = None,
    reset: Annotated[bool, typer.Option("--reset", help="Back to the defaults.")] = False,
) -> None:
    """Per-number frequency caps (and a daily account cap) for one account."""
    values = _caps(per_minute, per_hour, per_day, reset) | _maybe("daily_cap", daily_cap, reset)
    with admin() as (_, policy):
        policy.set_account_limits(name, values)
    out.print(f"limits for {name}: {_show(values)}")


def product_limits(
    product_id: Annotated[str, typer.Argument(metavar="ID")],
    per_minute: Cap = None,
    per_hour: Cap = None,
    per_day: Cap = None,
    reset: Annotated[bool, typer.Option("--reset", help="Back to the defaults.")] = False,
) -> None:
    """Per-number frequency caps for every account on one product."""
    values = _caps(per_minute, per_hour, per_day, reset)
    with admin() as (_, policy):
        policy.set_product_limits(product_id, values)
    out.print(f"limits for product {product_id}: {_show(values)}")


@optout_app.command("remove")
def optout_remove(name: Name, phone: str) -> None:
    """Allow sending to a number again (after the user opted back in)."""
    with admin() as (_, policy):
        removed = policy.remove_optout(name, phone)
    out.print(f"{phone} {'removed from' if removed else 'was not on'} {name}'s opt-out list")


def messages(
    account: Annotated[str | None, typer.Option(help="Only this account.")] = None,
    phone: Annotated[str | None, typer.Option(help="Only this number.")] = None,
    state: Annotated[MessageState | None, typer.Option(help="Only this state.")] = None,
    since: Annotated[str | None, typer.Option(help="YYYY-MM-DD[THH:MM] UTC, or e.g. 2h.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 20,
) -> None:
    """Messages, newest first, with their state (accepted, submitted, delivered, ...)."""
    from smsgate.gateway import Gateway

    gateway = Gateway.open(Settings())
    try:
        account_id = gateway.admin.show(account).account.id if account else None
        found = gateway.messages.messages(
            MessageFilter(
                account_id=account_id, phone=phone, state=state, since=_since(since), limit=limit
            )
        )
    finally:
        gateway.close()
    table = Table("id", "when (UTC)", "account", "phone", "state", "units", "content")
    for m in found:
        table.add_row(
            str(m.id),
            m.created_at.strftime("%m-%d %H:%M:%S"),
            m.account,
            m.phone,
            m.state.value,
            str(m.units),
            m.content,
        )
    out.print(table if found else "no messages")


def _caps(
    per_minute: int | None, per_hour: int | None, per_day: int | None, reset: bool
) -> dict[str, int | None]:
    return (
        _maybe("freq_per_minute", per_minute, reset)
        | _maybe("freq_per_hour", per_hour, reset)
        | _maybe("freq_per_day", per_day, reset)
    )


def _maybe(name: str, value: int | None, reset: bool) -> dict[str, int | None]:
    if reset:
        return {name: None}
    return {} if value is None else {name: value}


def _show(values: dict[str, int | None]) -> str:
    return ", ".join(
        f"{k.removeprefix('freq_')}={'default' if v is None else v}" for k, v in values.items()
    )


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    units = {"m": 60, "h": 3600, "d": 86400}
    if text[:-1].isdigit() and text[-1:] in units:
        return datetime.now(UTC) - timedelta(seconds=int(text[:-1]) * units[text[-1]])
    try:
        return parse_when(text)
    except errors.InvalidInput:
        raise errors.InvalidInput(
            f"--since {text!r}: give YYYY-MM-DD[THH:MM] or an age such as 30m, 2h, 1d"
        ) from None
