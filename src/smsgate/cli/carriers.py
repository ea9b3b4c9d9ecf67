"""`smsgate carrier ...`: the links messages leave by (SMPP, CMPP, upstream HTTP providers).

Stored in the database: a running server starts, restarts or stops a carrier within
about a second of a change. Secrets are never printed.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from smsgate.cli.context import DataDir, open_database
from smsgate.cli.output import print_table, say
from smsgate.services.carrier_admin import CarrierView

group = typer.Typer(
    help="Carrier links: SMPP, CMPP, upstream HTTP providers (SMSBao, Aliyun, Tencent), "
    "simulators. A product's route names them in order (`smsgate product set ID --carriers`).",
    no_args_is_help=True,
)

CarrierName = Annotated[str, typer.Argument(metavar="NAME", help="The carrier's name.")]


def _opt(help_text: str, flag: str | None = None) -> Any:
    return typer.Option(flag, help=help_text) if flag else typer.Option(help=help_text)


Host = Annotated[str | None, _opt("SMSC host (smpp, cmpp).")]
Port = Annotated[int | None, _opt("SMSC port (smpp, cmpp).")]
SystemId = Annotated[str | None, _opt("Login: SMPP system_id.")]
Password = Annotated[str | None, _opt("Login password (stored, never printed).")]
SystemType = Annotated[str | None, _opt("SMPP system_type.")]
SourceAddr = Annotated[
    str | None, _opt("Source number; the account's extended code is appended to it.")
]
Window = Annotated[int | None, _opt("Submits in flight per connection.")]
Tps = Annotated[float | None, _opt("Submits per second at most, for the whole carrier.")]
Binds = Annotated[int | None, _opt("Connections (binds) to open.")]
Url = Annotated[str | None, _opt("Base URL of an upstream HTTP provider.")]
Username = Annotated[str | None, _opt("Upstream account name (smsbao).")]
AccessKey = Annotated[str | None, _opt("Access key id (aliyun, tencent).")]
Secret = Annotated[str | None, _opt("Shared secret or access key secret (never printed).")]
SpId = Annotated[str | None, _opt("Login: CMPP SP code (cmpp).")]
CmppVersion = Annotated[str | None, _opt("CMPP version: 2 or 3 (cmpp).")]
Networks = Annotated[
    str | None,
    _opt("Only these networks: cmcc,cucc,ctcc,cbn,virtual,intl (others go to the next carrier)."),
]
Extra = Annotated[
    list[str] | None,
    typer.Option("--opt", metavar="KEY=VALUE", help="Any other option of the kind (repeatable)."),
]


# Options with a flag of their own (the rest go through --opt KEY=VALUE).
_FLAGS = frozenset(
    (
        "host",
        "port",
        "system_id",
        "password",
        "system_type",
        "source_addr",
        "window",
        "tps",
        "binds",
        "url",
        "username",
        "access_key",
        "secret",
        "networks",
        "sp_id",
        "version",
    )
)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="carrier")


def _given(extra: list[str] | None, **flags: Any) -> dict[str, Any]:
    given = {k: v for k, v in flags.items() if v is not None}
    for item in extra or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"--opt takes KEY=VALUE, got {item!r}")
        given[key.strip().replace("-", "_")] = value
    return given


@group.command("add")
def carrier_add(
    name: CarrierName,
    kind: Annotated[str, typer.Option(help="smpp, cmpp, smsbao, aliyun, tencent or simulator.")],
    host: Host = None,
    port: Port = None,
    system_id: SystemId = None,
    password: Password = None,
    system_type: SystemType = None,
    source_addr: SourceAddr = None,
    window: Window = None,
    tps: Tps = None,
    binds: Binds = None,
    url: Url = None,
    username: Username = None,
    access_key: AccessKey = None,
    secret: Secret = None,
    networks: Networks = None,
    sp_id: SpId = None,
    version: CmppVersion = None,
    opt: Extra = None,
    data_dir: DataDir = None,
) -> None:
    """Add a carrier. Example:

    smsgate carrier add cmcc-smpp --kind smpp --host smsc.example.com --port 2775
    --system-id acme --password PW --window 32 --tps 200
    """
    given = _given(opt, **{k: v for k, v in locals().items() if k in _FLAGS})
    with open_database(data_dir) as db:
        view = db.carrier_admin.add(name, kind, given)
    say(
        f"added carrier {view.name} ({view.kind}); route a product through it with "
        f"`smsgate product set ID --carriers {view.name}`"
    )


@group.command("set")
def carrier_set(
    name: CarrierName,
    host: Host = None,
    port: Port = None,
    system_id: SystemId = None,
    password: Password = None,
    system_type: SystemType = None,
    source_addr: SourceAddr = None,
    window: Window = None,
    tps: Tps = None,
    binds: Binds = None,
    url: Url = None,
    username: Username = None,
    access_key: AccessKey = None,
    secret: Secret = None,
    networks: Networks = None,
    sp_id: SpId = None,
    version: CmppVersion = None,
    opt: Extra = None,
    enable: Annotated[
        bool | None, typer.Option("--enable/--disable", help="Run it, or stop it.")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Change a carrier's options; a running server restarts it within about a second."""
    given = _given(opt, **{k: v for k, v in locals().items() if k in _FLAGS})
    with open_database(data_dir) as db:
        view = db.carrier_admin.change(name, given, enable)
    say(f"changed carrier {view.name}" + ("" if view.enabled else " (disabled)"))


@group.command("remove")
def carrier_remove(name: CarrierName, data_dir: DataDir = None) -> None:
    """Remove a carrier no product routes through any more."""
    with open_database(data_dir) as db:
        db.carrier_admin.remove(name)
    say(f"removed carrier {name}")


@group.command("list")
def carrier_list(data_dir: DataDir = None) -> None:
    """Every configured carrier, with its live state on running servers."""
    with open_database(data_dir) as db:
        views = db.carrier_admin.list()
        builtin = db.carrier_admin.live_builtin()
    rows = [
        (
            v.name,
            v.kind,
            "yes" if v.enabled else "no",
            str(v.options.get("networks") or "all"),
            _state(v.live),
        )
        for v in views
    ]
    rows += [
        (name, "simulator (built in)", "yes", "all", _state(live))
        for name, live in builtin.items()
        if name not in {v.name for v in views}
    ]
    print_table(
        ("name", "kind", "enabled", "networks", "state"),
        rows,
        empty="no carriers configured: messages go to the built-in simulator "
        "(add one with `smsgate carrier add`)",
        markup=False,
    )


@group.command("show")
def carrier_show(
    name: CarrierName,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    data_dir: DataDir = None,
) -> None:
    """One carrier: its options (secrets shown as "set") and its live state per server."""
    with open_database(data_dir) as db:
        view = db.carrier_admin.show(name)
    if as_json:
        say(json.dumps(_as_dict(view), ensure_ascii=False, indent=2, default=str))
        return
    say(f"{view.name}: {view.kind}, {'enabled' if view.enabled else 'disabled'}")
    for key, value in sorted(view.options.items()):
        say(f"  {key}: {value}")
    if not view.live:
        say("live: no running server reports this carrier")
    for node, status in view.live.items():
        say(f"live on node {node[:8]}:")
        for key, value in status.items():
            say(f"  {key}: {value}")


def _state(live: dict[str, dict[str, Any]]) -> str:
    if not live:
        return "not running"
    return ", ".join(str(status.get("state", "?")) for status in live.values())


def _as_dict(view: CarrierView) -> dict[str, Any]:
    return {
        "name": view.name,
        "kind": view.kind,
        "enabled": view.enabled,
        "options": view.options,
        "live": view.live,
    }
