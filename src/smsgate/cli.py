"""The `smsgate` command: serve, migrate, and the operator's admin commands.

Every command reads the same settings (``--data-dir`` / ``SMSGATE_DATA_DIR``, or
``SMSGATE_DATABASE_URL``). Errors print one line and exit 1, never a traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from smsgate import __version__, errors

# soft_wrap: a message is one line even in a pipe (rich would wrap it at 80 columns).
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

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
        from smsgate import cli_admin, cli_mo, cli_policy, cli_serve
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
    cli_mo.register(app)


def main() -> None:
    """Entry point: run the Typer app, turning every known failure into one line, exit 1."""
    _register()
    usage_error, abort = _click_errors()
    try:
        code = app(standalone_mode=False)
    except usage_error as exc:
        if type(exc).__name__ == "NoArgsIsHelpError" and exc.ctx is not None:
            out.print(exc.ctx.get_help(), markup=False)  # a bare group: show what it offers
            sys.exit(0)
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        err.print(f"error: {exc.format_message()}{hint}", markup=False)
        sys.exit(1)
    except abort:
        err.print("aborted")
        sys.exit(1)
    except errors.SmsgateError as exc:
        err.print(f"error: {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # a database that is down, a disk that is full...
        if _is_database_error(exc):
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            err.print(f"error: the database is not reachable or not usable: {first_line}")
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
