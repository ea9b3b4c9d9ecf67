"""The `smsgate` command: serve, migrate, and the operator's admin commands.

Every command reads the same settings (``--data-dir`` / ``SMSGATE_DATA_DIR``, or
``SMSGATE_DATABASE_URL``). Errors print one line and exit 1, never a traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.console import Console

from smsgate import __version__, errors

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)

app = typer.Typer(
    name="smsgate",
    help="smsgate: a self-hosted SMS gateway that speaks the SMSBao (短信宝) HTTP API.\n\n"
    "Start with `smsgate serve --demo`, then point any SMSBao client at the printed URL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Data directory (SQLite lives here).",
        envvar="SMSGATE_DATA_DIR",
        show_default="./smsgate-data",
    ),
]


@app.callback()
def root(
    data_dir: DataDir = None,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        out.print(f"smsgate {__version__}")
        raise typer.Exit()
    if data_dir is not None:
        os.environ["SMSGATE_DATA_DIR"] = str(data_dir)


def _register() -> None:
    from smsgate import cli_client

    cli_client.register(app)
    try:  # the server's commands need the `server` extra; the client's do not
        from smsgate import cli_admin, cli_policy, cli_serve
    except ImportError as missing:
        if (missing.name or "").startswith("smsgate"):
            raise  # our own bug, not a missing extra
        app.info.epilog = (
            f"Server commands are not installed ({missing.name} is missing): "
            "pip install 'smsgate[server]'"
        )
        return
    cli_serve.register(app)
    cli_admin.register(app)
    cli_policy.register(app)


def main() -> None:
    """Entry point: run the Typer app, turning every known failure into one line."""
    _register()
    try:
        code = app(standalone_mode=False)
    except click.exceptions.Abort:
        err.print("aborted")
        sys.exit(1)
    except click.UsageError as exc:
        exc.show()
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(1)
    except errors.SmsgateError as exc:
        err.print(f"error: {exc}")
        sys.exit(1)
    except Exception as exc:  # a database that is down, a disk that is full...
        if _is_database_error(exc):
            err.print(f"error: the database is not reachable or not usable: {exc}".splitlines()[0])
            err.print("check --data-dir / SMSGATE_DATABASE_URL and that the database is running")
            sys.exit(1)
        raise
    sys.exit(code if isinstance(code, int) else 0)


def _is_database_error(exc: Exception) -> bool:
    try:
        import sqlalchemy.exc
    except ImportError:
        return False
    return isinstance(exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError)


if __name__ == "__main__":
    main()
