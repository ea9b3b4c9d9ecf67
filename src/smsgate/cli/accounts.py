"""`smsgate account ...`: create, inspect and configure customer accounts.

They work on the database directly, also while a server runs; the server sees a
change within its snapshot refresh interval (0.5 s by default).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from smsgate import errors
from smsgate.cli.context import DataDir, open_database
from smsgate.cli.output import out, print_table
from smsgate.cli.values import (
    NUMERIC_ARGS,
    Cap,
    Name,
    Reset,
    caps,
    maybe,
    parse_when,
    show_caps,
    whole_number,
)
from smsgate.core.accounts import Account, AccountInfo
from smsgate.settings import Settings

group = typer.Typer(help="Create, inspect and configure customer accounts.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="account")


@group.command("create", context_settings=NUMERIC_ARGS)
def account_create(
    name: Name,
    password: Annotated[str, typer.Option("--password", "-p", help="Login password (6-128).")],
    balance: Annotated[str, typer.Option(help="Opening balance in units.")] = "0",
    data_dir: DataDir = None,
) -> None:
    """Create an account; prints its first ApiKey (shown once, stored hashed)."""
    amount = whole_number(balance, "--balance")
    if amount < 0:
        raise errors.InvalidInput("--balance cannot be negative")
    with open_database(data_dir) as db:
        created = db.admin.create_account(name, password, amount)
    out.print(f"created account {created.username} (balance {amount})")
    out.print(f"ApiKey: {created.api_key}")
    out.print("Keep the ApiKey now: it is stored hashed and cannot be shown again.", style="dim")


@group.command("topup", context_settings=NUMERIC_ARGS)
def account_topup(
    name: Name,
    units: Annotated[str, typer.Argument(metavar="N", help="Units to add (positive).")],
    ref: Annotated[str | None, typer.Option(help="Reference, e.g. an invoice number.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Add units to an account's balance (a top-up ledger row)."""
    amount = whole_number(units, "N")
    with open_database(data_dir) as db:
        balance = db.admin.topup(name, amount, ref)
    out.print(f"{name}: +{amount}, balance {balance}")


@group.command("adjust", context_settings=NUMERIC_ARGS)
def account_adjust(
    name: Name,
    delta: Annotated[str, typer.Argument(help="Units to add (+) or remove (-).")],
    reason: Annotated[str, typer.Option(help="Why: kept in the ledger.")],
    data_dir: DataDir = None,
) -> None:
    """Correct a balance either way (an adjustment ledger row); never below zero."""
    amount = whole_number(delta, "DELTA")
    with open_database(data_dir) as db:
        balance = db.admin.adjust(name, amount, reason)
    out.print(f"{name}: {amount:+d}, balance {balance}")


@group.command("show")
def account_show(name: Name, data_dir: DataDir = None) -> None:
    """Everything about one account."""
    with open_database(data_dir) as db:
        info = db.admin.show(name)
        own = db.policy.account_limits().get(info.account.id, {})
        settings = db.settings
    for label, value in [*_describe(info), *_caps(own, settings)]:
        out.print(f"{label:<11} {value}", markup=False)


@group.command("list")
def account_list(data_dir: DataDir = None) -> None:
    """All accounts, one line each."""
    with open_database(data_dir) as db:
        infos = db.admin.accounts()
    print_table(
        ("username", "status", "balance", "sent", "expiry", "ext code", "MO URL"),
        (
            (
                info.account.username,
                _status(info),
                str(info.balance),
                str(info.sent),
                _when(info.account.expires_at),
                info.account.ext_code or "-",
                info.account.mo_url or "-",
            )
            for info in infos
        ),
        empty="no accounts yet: `smsgate account create NAME --password PW`",
    )


@group.command("set")
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
    provider_codes: Annotated[
        bool | None,
        typer.Option(
            "--provider-codes/--all-codes",
            help="Answer only SMSBao's documented codes (each of ours as its nearest one, "
            "protocol.md), for a client that fails on others.",
            show_default=False,
        ),
    ] = None,
    unknown_g_default: Annotated[
        bool | None,
        typer.Option(
            "--unknown-g-default/--unknown-g-refused",
            help="Send an unknown product id g to the default product instead of 55.",
            show_default=False,
        ),
    ] = None,
    cmpp_sp_id: Annotated[
        str | None, typer.Option(help="SP code (6 digits) it logs in to the CMPP server with.")
    ] = None,
    cmpp_secret: Annotated[
        str | None, typer.Option(help="Shared secret of its CMPP login ('' clears).")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Change an account's settings."""
    if disable and enable:
        raise errors.InvalidInput("give --disable or --enable, not both")
    never = expires is not None and expires.strip().lower() == "never"
    with open_database(data_dir) as db:
        db.admin.configure(
            name,
            mo_url=mo_url,
            expires_at=None if expires is None or never else parse_when(expires),
            clear_expiry=never,
            enabled=True if enable else False if disable else None,
            ext_code=ext_code,
            password=password,
            provider_codes=provider_codes,
            unknown_g_default=unknown_g_default,
            cmpp_sp_id=cmpp_sp_id,
            cmpp_secret=cmpp_secret,
        )
    out.print(f"updated {name}")


@group.command("allow-ip")
def account_allow_ip(
    name: Name,
    cidrs: Annotated[list[str], typer.Argument(metavar="CIDR...")],
    data_dir: DataDir = None,
) -> None:
    """Admit requests only from these addresses (IPv4/IPv6, CIDR or single address)."""
    with open_database(data_dir) as db:
        added = db.admin.allow_ip(name, cidrs)
    out.print(f"{name} allows {', '.join(added)}")


@group.command("disallow-ip")
def account_disallow_ip(
    name: Name,
    cidrs: Annotated[list[str], typer.Argument(metavar="CIDR...")],
    data_dir: DataDir = None,
) -> None:
    """Remove networks from the allowlist (an empty list admits every address)."""
    with open_database(data_dir) as db:
        removed = db.admin.disallow_ip(name, cidrs)
    out.print(f"{name} no longer allows {', '.join(removed)}")


@group.command("apikey")
def account_apikey(name: Name, data_dir: DataDir = None) -> None:
    """Issue a new ApiKey (shown once); earlier keys keep working."""
    with open_database(data_dir) as db:
        key = db.admin.new_api_key(name)
    out.print(f"ApiKey: {key}")


@group.command("products")
def account_products(
    name: Name,
    product_ids: Annotated[list[str], typer.Argument(metavar="ID...")],
    data_dir: DataDir = None,
) -> None:
    """Grant private products to an account."""
    with open_database(data_dir) as db:
        db.admin.grant_products(name, product_ids)
    out.print(f"{name} may use {', '.join(product_ids)}")


@group.command("limits")
def account_limits(
    name: Name,
    per_minute: Cap = None,
    per_hour: Cap = None,
    per_day: Cap = None,
    daily_cap: Annotated[
        int | None, typer.Option(min=0, help="Messages per account per day.")
    ] = None,
    reset: Reset = False,
    data_dir: DataDir = None,
) -> None:
    """Per-number frequency caps (and a daily account cap) for one account."""
    values = caps(per_minute, per_hour, per_day, reset) | maybe("daily_cap", daily_cap, reset)
    with open_database(data_dir) as db:
        db.policy_admin.set_account_limits(name, values)
    out.print(f"limits for {name}: {show_caps(values)}")


def _cmpp_login(a: Account) -> str:
    """The CMPP login, never the secret itself."""
    if a.cmpp_sp_id is None:
        return "-"
    return f"SP {a.cmpp_sp_id}, secret {'set' if a.cmpp_secret else 'not set'}"


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
        ("codes", "provider's documented only" if a.provider_codes else "all smsgate codes"),
        ("unknown_g", "default product" if a.unknown_g_default else "refused (55)"),
        ("cmpp", _cmpp_login(a)),
        ("created", _when(info.created_at)),
    ]


def _caps(own: dict[str, int | None], settings: Settings) -> list[tuple[str, str]]:
    """The frequency caps that hold for the account: its own, else the defaults."""

    def cap(name: str, default: int | None, unit: str) -> str:
        value, source = own.get(name), "account"
        if value is None:
            value, source = default, "default"
        shown = "no cap" if value is None else f"{value}/{unit}"
        return f"{shown} ({source})"

    same = settings.freq_same_content_seconds
    return [
        (
            "caps",
            "per number: "
            + ", ".join(
                (
                    cap("freq_per_minute", settings.freq_per_minute, "minute"),
                    cap("freq_per_hour", settings.freq_per_hour, "hour"),
                    cap("freq_per_day", settings.freq_per_day, "day"),
                )
            ),
        ),
        ("", "same text to one number: " + (f"once per {same:g} s" if same else "no limit")),
        ("", "account: " + cap("daily_cap", settings.daily_account_cap, "day")),
        ("", "(a product's own caps may be lower: `smsgate product list`)"),
    ]


def _status(info: AccountInfo) -> str:
    a = info.account
    if a.status.value == "active" and a.expires_at and a.expires_at <= datetime.now(UTC):
        return "expired"
    return a.status.value


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "never"
