"""`smsgate operator ...`: who may sign in to the web console as an operator."""

from __future__ import annotations

from typing import Annotated

import typer

from smsgate.cli.context import DataDir, open_database
from smsgate.cli.output import out
from smsgate.cli.values import Name

group = typer.Typer(help="Console operators (they manage every account).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="operator")


@group.command("create")
def operator_create(
    name: Name,
    password: Annotated[
        str,
        typer.Option(
            "--password",
            "-p",
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            help="Sign-in password (8-128); asked for when not given.",
        ),
    ],
    data_dir: DataDir = None,
) -> None:
    """Create a console operator, who signs in at the server's `/` with this password."""
    with open_database(data_dir) as db:
        db.operators.create(name, password)
    out.print(f"created operator {name}: sign in at the console (/) with this password")
