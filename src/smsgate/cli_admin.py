"""Operator commands: accounts, signatures, products, words.

They work on the database directly, also while a server runs; the server sees a
change within its snapshot refresh interval (0.5 s by default).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from smsgate import errors
from smsgate.cli import out
from smsgate.core.accounts import AccountInfo, Product
from smsgate.services.admin import AdminService
from smsgate.services.policy_admin import PolicyAdmin
from smsgate.settings import Settings

account_app = typer.Typer(
    help="Create, inspect and configure customer accounts.", no_args_is_help=True
)
signature_app = typer.Typer(help="Signatures 【…】 registered per account.", no_args_is_help=True)
product_app = typer.Typer(
    help="Products (the `g` parameter): price, carrier, templates.", no_args_is_help=True
)
words_app = typer.Typer(help="The sensitive-word list (code 50).", no_args_is_help=True)

Name = Annotated[str, typer.Argument(help="Account username.")]
# Negative numbers must reach our own validation instead of being read as options.
NUMERIC_ARGS = {"ignore_unknown_options": True}


def register(app: typer.Typer) -> None:
    app.add_typer(account_app, name="account")
    app.add_typer(signature_app, name="signature")
    app.add_typer(product_app, name="product")
    app.add_typer(words_app, name="words")


@contextmanager
def admin() -> Iterator[tuple[AdminService, PolicyAdmin]]:
    from smsgate.gateway import Gateway

    gateway = Gateway.open(Settings())
    try:
        yield gateway.admin, gateway.policy_admin
    finally:
        gateway.close()


def whole_number(text: str, what: str) -> int:
    if not re.fullmatch(r"[+-]?\d{1,15}", text.strip()):
        raise errors.InvalidInput(f"{what} must be a whole number of units, got {text!r}")
    return int(text)


# -- account -------------------------------------------------------------------------


@account_app.command("create", context_settings=NUMERIC_ARGS)
def account_create(
    name: Name,
    password: Annotated[str, typer.Option("--password", "-p", help="Login password (6-128).")],
    balance: Annotated[str, typer.Option(help="Opening balance in units.")] = "0",
) -> None:
    """Create an account; prints its first ApiKey (shown once, stored hashed)."""
    amount = whole_number(balance, "--balance")
    if amount < 0:
        raise errors.InvalidInput("--balance cannot be negative")
    with admin() as (svc, _):
        created = svc.create_account(name, password, amount)
    out.print(f"created account {created.username} (balance {amount})")
    out.print(f"ApiKey: {created.api_key}")
    out.print("Keep the ApiKey now: it is stored hashed and cannot be shown again.", style="dim")


@account_app.command("topup", context_settings=NUMERIC_ARGS)
def account_topup(
    name: Name,
    units: Annotated[str, typer.Argument(metavar="N", help="Units to add (positive).")],
    ref: Annotated[str | None, typer.Option(help="Reference, e.g. an invoice number.")] = None,
) -> None:
    """Add units to an account's balance (a top-up ledger row)."""
    amount = whole_number(units, "N")
    with admin() as (svc, _):
        balance = svc.topup(name, amount, ref)
    out.print(f"{name}: +{amount}, balance {balance}")


@account_app.command("adjust", context_settings=NUMERIC_ARGS)
def account_adjust(
    name: Name,
    delta: Annotated[str, typer.Argument(help="Units to add (+) or remove (-).")],
    reason: Annotated[str, typer.Option(help="Why: kept in the ledger.")],
) -> None:
    """Correct a balance either way (an adjustment ledger row); never below zero."""
    amount = whole_number(delta, "DELTA")
    with admin() as (svc, _):
        balance = svc.adjust(name, amount, reason)
    out.print(f"{name}: {amount:+d}, balance {balance}")


@account_app.command("show")
def account_show(name: Name) -> None:
    """Everything about one account."""
    with admin() as (svc, _):
        info = svc.show(name)
    for label, value in _describe(info):
        out.print(f"{label:<11} {value}", markup=False)


@account_app.command("list")
def account_list() -> None:
    """All accounts, one line each."""
    with admin() as (svc, _):
        infos = svc.accounts()
    table = Table("username", "status", "balance", "sent", "expiry", "ext code", "MO URL")
    for info in infos:
        a = info.account
        table.add_row(
            a.username,
            _status(info),
            str(info.balance),
            str(info.sent),
            _when(a.expires_at),
            a.ext_code or "-",
            a.mo_url or "-",
        )
    out.print(table if infos else "no accounts yet: `smsgate account create NAME --password PW`")


@account_app.command("set")
def account_set(
    name: Name,
    mo_url: Annotated[
        str | None, typer.Option(help="Where replies are pushed ('' clears).")
    ] = None,
    expires: Annotated[
        str | None, typer.Option(help="Expiry: YYYY-MM-DD[THH:MM] UTC, or 'never'.")
    ] = None,
    disable: Annotated[bool, typer.Option("--disable", help="Refuse its requests (42).")] = False,
    enable: Annotated[bool, typer.Option("--enable", help="Accept its requests again.")] = False,
    ext_code: Annotated[
        str | None, typer.Option(help="Extended code (sub-port) for replies ('' clears).")
    ] = None,
    password: Annotated[str | None, typer.Option(help="A new login password.")] = None,
) -> None:
    """Change an account's settings."""
    if disable and enable:
        raise errors.InvalidInput("give --disable or --enable, not both")
    never = expires is not None and expires.strip().lower() == "never"
    with admin() as (svc, _):
        svc.configure(
            name,
            mo_url=mo_url,
            expires_at=None if expires is None or never else parse_when(expires),
            clear_expiry=never,
            enabled=True if enable else False if disable else None,
            ext_code=ext_code,
            password=password,
        )
    out.print(f"updated {name}")


@account_app.command("allow-ip")
def account_allow_ip(
    name: Name, cidrs: Annotated[list[str], typer.Argument(metavar="CIDR...")]
) -> None:
    """Admit requests only from these addresses (IPv4/IPv6, CIDR or single address)."""
    with admin() as (svc, _):
        added = svc.allow_ip(name, cidrs)
    out.print(f"{name} allows {', '.join(added)}")


@account_app.command("disallow-ip")
def account_disallow_ip(
    name: Name, cidrs: Annotated[list[str], typer.Argument(metavar="CIDR...")]
) -> None:
    """Remove networks from the allowlist (an empty list admits every address)."""
    with admin() as (svc, _):
        removed = svc.disallow_ip(name, cidrs)
    out.print(f"{name} no longer allows {', '.join(removed)}")


@account_app.command("apikey")
def account_apikey(name: Name) -> None:
    """Issue a new ApiKey (shown once); earlier keys keep working."""
    with admin() as (svc, _):
        key = svc.new_api_key(name)
    out.print(f"ApiKey: {key}")


@account_app.command("products")
def account_products(
    name: Name, product_ids: Annotated[list[str], typer.Argument(metavar="ID...")]
) -> None:
    """Grant private products to an account."""
    with admin() as (svc, _):
        svc.grant_products(name, product_ids)
    out.print(f"{name} may use {', '.join(product_ids)}")


def _describe(info: AccountInfo) -> list[tuple[str, str]]:
    a = info.account
    return [
        ("username", a.username),
        ("status", _status(info)),
        ("expiry", _when(a.expires_at)),
        ("balance", str(info.balance)),
        ("sent", str(info.sent)),
        ("allowlist", ", ".join(str(n) for n in a.allowlist) or "any address"),
        ("mo_url", a.mo_url or "-"),
        ("ext_code", a.ext_code or "-"),
        ("signatures", ", ".join(f"【{s}】" for s in sorted(a.signatures)) or "-"),
        ("products", ", ".join(sorted(a.products)) or "public products only"),
        ("api_keys", ", ".join(f"{h}…" for h in info.key_hints) or "-"),
        ("created", _when(info.created_at)),
    ]


def _status(info: AccountInfo) -> str:
    a = info.account
    if a.status.value == "active" and a.expires_at and a.expires_at <= datetime.now(UTC):
        return "expired"
    return a.status.value


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "never"


def parse_when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise errors.InvalidInput(
            f"cannot read {text!r} as a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)"
        ) from None
    if len(text.strip()) == 10:  # a bare date means the end of that day
        value = datetime.combine(value.date(), time.max)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# -- signature, product, words ---------------------------------------------------------


@signature_app.command("add")
def signature_add(
    name: Name, text: Annotated[str, typer.Argument(help="Without brackets: 短信宝")]
) -> None:
    """Register a signature for an account (`短信宝` registers 【短信宝】)."""
    with admin() as (svc, _):
        inner = svc.add_signature(name, text)
    out.print(f"{name} may sign with 【{inner}】")


@signature_app.command("list")
def signature_list(name: Name) -> None:
    """The signatures an account may use."""
    with admin() as (svc, _):
        info = svc.show(name)
    for sig in sorted(info.account.signatures):
        out.print(f"【{sig}】")


@product_app.command("add", context_settings=NUMERIC_ARGS)
def product_add(
    product_id: Annotated[str, typer.Argument(metavar="ID", help="The `g` value clients send.")],
    name: Annotated[str, typer.Argument(metavar="NAME")],
    carrier: Annotated[str, typer.Option(help="Carrier connector name.")] = "simulator",
    price: Annotated[str, typer.Option(help="Units charged per message unit.")] = "1",
    template_required: Annotated[
        bool, typer.Option("--template-required", help="Only approved templates (54).")
    ] = False,
    private: Annotated[
        bool, typer.Option("--private", help="Only for accounts granted it.")
    ] = False,
) -> None:
    """Add a product (goods id `g`)."""
    product = Product(
        product_id, name, whole_number(price, "--price"), carrier, template_required, private
    )
    with admin() as (svc, _):
        svc.add_product(product)
    out.print(f"added product {product_id} ({name})")


@product_app.command("list")
def product_list() -> None:
    """All products."""
    with admin() as (svc, _):
        products = svc.products()
    table = Table("id", "name", "price", "carrier", "template", "visibility")
    for p in products:
        table.add_row(
            p.id,
            p.name,
            str(p.price),
            p.carrier,
            "required" if p.template_required else "-",
            "private" if p.private else "all accounts",
        )
    out.print(table)


@words_app.command("add")
def words_add(
    words: Annotated[list[str], typer.Argument(metavar="WORD...")],
    category: Annotated[str, typer.Option(help="A label for reports.")] = "general",
) -> None:
    """Add sensitive words."""
    with admin() as (svc, _):
        added = svc.add_words(words, category)
    out.print(f"added {added} word(s)")


@words_app.command("import")
def words_import(
    file: Annotated[Path, typer.Argument(help="UTF-8 text, one word per line (# comments).")],
    category: Annotated[str, typer.Option(help="A label for reports.")] = "general",
) -> None:
    """Add every word of a file."""
    try:
        lines = file.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise errors.InvalidInput(f"cannot read {file}: {exc}") from None
    words = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    with admin() as (svc, _):
        added = svc.add_words(words, category)
    out.print(f"added {added} new word(s) of {len(words)} in {file}")


@words_app.command("list")
def words_list() -> None:
    """The sensitive-word list."""
    with admin() as (svc, _):
        rows = svc.words()
    table = Table("word", "category")
    for word, category in rows:
        table.add_row(word, category)
    out.print(table if rows else "the word list is empty")


@words_app.command("remove")
def words_remove(words: Annotated[list[str], typer.Argument(metavar="WORD...")]) -> None:
    """Remove sensitive words."""
    with admin() as (svc, _):
        removed = svc.remove_words(words)
    out.print(f"removed {removed} word(s)")
