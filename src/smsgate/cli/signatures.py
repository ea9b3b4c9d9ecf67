"""`smsgate signature ...`: the signatures 【…】 each account may sign with."""

from __future__ import annotations

from typing import Annotated

import typer

from smsgate.cli.context import DataDir, open_database
from smsgate.cli.output import out
from smsgate.cli.values import Name

group = typer.Typer(help="Signatures 【…】 registered per account.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="signature")


@group.command("add")
def signature_add(
    name: Name,
    text: Annotated[str, typer.Argument(help="Without brackets: 短信宝")],
    data_dir: DataDir = None,
) -> None:
    """Register a signature for an account (`短信宝` registers 【短信宝】)."""
    with open_database(data_dir) as db:
        inner = db.admin.add_signature(name, text)
    out.print(f"{name} may sign with 【{inner}】")


@group.command("list")
def signature_list(name: Name, data_dir: DataDir = None) -> None:
    """The signatures an account may use."""
    with open_database(data_dir) as db:
        info = db.admin.show(name)
    for sig in sorted(info.account.signatures):
        out.print(f"【{sig}】")
