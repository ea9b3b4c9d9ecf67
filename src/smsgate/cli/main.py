"""The `smsgate` command's root: global options, the command groups, and `main()`.

Every command reads the same settings (``--data-dir`` / ``SMSGATE_DATA_DIR``, or
``SMSGATE_DATABASE_URL``). Errors print one line and exit 1, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from smsgate import __version__, errors
from smsgate.cli import client
from smsgate.cli.context import DATA_DIR_HELP, RootOptions
from smsgate.cli.output import err, fail, out

HELP = (
    "smsgate: a self-hosted SMS gateway that speaks the SMSBao (短信宝) HTTP API.\n\n"
    "Start with `smsgate serve --demo`, then point any SMSBao client at the printed URL."
)


# The root's --data-dir reads the environment too; a command's own --data-dir does not,
# so that `SMSGATE_DATA_DIR=A smsgate --data-dir B account list` uses B.
RootDataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help=DATA_DIR_HELP,
        envvar="SMSGATE_DATA_DIR",
        show_default="./smsgate-data",
    ),
]


def _print_version(wanted: bool) -> None:
    if wanted:
        out.print(f"smsgate {__version__}")
        raise typer.Exit()


def root(
    ctx: typer.Context,
    data_dir: RootDataDir = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    ctx.obj = RootOptions(data_dir=data_dir)


def build() -> typer.Typer:
    """The `smsgate` app: the root and every command group installed."""
    app = typer.Typer(
        name="smsgate",
        help=HELP,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(root)
    client.register(app)
    try:  # the server's commands need the `server` extra; the client's do not
        from smsgate.cli import (
            accounts,
            backups,
            carriers,
            messages,
            operators,
            optouts,
            products,
            replies,
            serve,
            signatures,
            templates,
            words,
        )
    except ImportError as missing:
        if (missing.name or "").startswith("smsgate"):
            raise  # our own bug, not a missing extra
        from rich.markup import escape  # the epilog is rich markup: keep "[server]"

        app.info.epilog = escape(
            f"Server commands are not installed ({missing.name} is missing): "
            "pip install 'smsgate[server]'"
        )
        return app
    for group in (
        serve,
        accounts,
        carriers,
        signatures,
        products,
        words,
        templates,
        optouts,
        messages,
        replies,
        backups,
        operators,
    ):
        group.register(app)
    return app


def main() -> None:
    """Entry point: run the Typer app, turning every known failure into one line, exit 1."""
    app = build()
    usage_error, abort = _click_errors()
    try:
        code = app(standalone_mode=False)
    except usage_error as exc:
        if type(exc).__name__ == "NoArgsIsHelpError" and exc.ctx is not None:
            out.print(exc.ctx.get_help(), markup=False)  # a bare group: show what it offers
            sys.exit(0)
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        fail(f"{exc.format_message()}{hint}")
        sys.exit(1)
    except abort:
        err.print("aborted")
        sys.exit(1)
    except errors.SmsgateError as exc:
        fail(str(exc))
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # a database that is down, a disk that is full...
        if _is_database_error(exc):
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            fail(f"the database is not reachable or not usable: {first_line}")
            err.print("check --data-dir / SMSGATE_DATABASE_URL and that the database is running")
            sys.exit(1)
        raise
    sys.exit(code if isinstance(code, int) else 0)


def _click_errors() -> tuple[type[Any], type[Any]]:
    """Typer's usage error and abort: recent Typer vendors click as `typer._click`."""
    try:
        from typer._click.exceptions import UsageError
    except ImportError:
        from click.exceptions import UsageError  # type: ignore[assignment]  # older Typer
    return UsageError, typer.Abort


def _is_database_error(exc: Exception) -> bool:
    try:
        import sqlalchemy.exc
    except ImportError:
        return False
    return isinstance(exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError)


if __name__ == "__main__":
    main()
