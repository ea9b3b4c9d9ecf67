"""`smsgate optout ...`: numbers that replied TD/退订 (code 57)."""

from __future__ import annotations

import typer

from smsgate.cli.context import DataDir, open_database
from smsgate.cli.output import out
from smsgate.cli.values import Name

group = typer.Typer(help="Numbers that replied TD/退订 (code 57).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="optout")


@group.command("remove")
def optout_remove(name: Name, phone: str, data_dir: DataDir = None) -> None:
    """Allow sending to a number again (after the user opted back in)."""
    with open_database(data_dir) as db:
        removed = db.policy_admin.remove_optout(name, phone)
    out.print(f"{phone} {'removed from' if removed else 'was not on'} {name}'s opt-out list")
