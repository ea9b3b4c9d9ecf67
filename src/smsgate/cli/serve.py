"""`smsgate serve`, `smsgate worker`, `smsgate migrate` and `smsgate config`."""

from __future__ import annotations

import functools
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from smsgate import __version__, errors
from smsgate.cli import datalock, serve_tls
from smsgate.cli.context import DataDir, build_settings, open_database
from smsgate.cli.output import out
from smsgate.core.accounts import password_md5
from smsgate.settings import HANDOVER_ENV, Settings, sample_toml

if TYPE_CHECKING:
    from smsgate.database import Database

# What uvicorn imports in each process of `serve --workers N`.
APP_FACTORY = "smsgate.app:app_from_env"

# granian's default line leaves the query string out; ours keeps it (with `p` masked by
# api/logging.py), since `u` and the path are what an operator looks for.
ACCESS_LOG_FORMAT = (
    '[%(time)s] %(addr)s - "%(method)s %(path)s?%(query_string)s %(protocol)s" '
    "%(status)d %(dt_ms).3f"
)

DEMO_USER = "demo"
DEMO_BALANCE = 1000

config_group = typer.Typer(help="Settings: print a sample config file.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command(help="Run the gateway: SMSBao endpoints, JSON API and console on one port.")(serve)
    app.command(help="Create or upgrade the database schema (serve does this on start).")(migrate)
    app.command(help="Dispatch queued messages without serving HTTP (for scale-out).")(worker)
    app.add_typer(config_group, name="config")


def serve(
    host: Annotated[str | None, typer.Option(help="Listen address [default: 127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port [default: 8080].")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Server processes (use Redis for >1).")] = 1,
    demo: Annotated[
        bool, typer.Option("--demo", help="Ensure a `demo` account and print its credentials.")
    ] = False,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Do not dispatch here; run `smsgate worker`.")
    ] = False,
    data_dir: DataDir = None,
    tls_cert: Annotated[
        Path | None, typer.Option(help="PEM certificate (chain): serve HTTPS as well.")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key of --tls-cert.")] = None,
    tls_port: Annotated[int | None, typer.Option(help="HTTPS port [default: 8443].")] = None,
) -> None:
    settings = build_settings(
        data_dir,
        host=host,
        port=port,
        run_worker=False if no_worker else None,
        tls_cert=tls_cert,
        tls_key=tls_key,
        tls_port=tls_port,
    )
    serve_tls.check_tls(settings, workers)
    if workers > 1 and settings.database_url is None and settings.run_worker:
        raise errors.InvalidInput(
            "on SQLite one process dispatches: use `--workers N --no-worker` plus one "
            "`smsgate worker`, or PostgreSQL (SMSGATE_DATABASE_URL) to scale out"
        )
    _hold_data_dir(settings)  # until this process exits: `smsgate restore` refuses meanwhile
    with open_database(settings=settings) as db:  # migrates a fresh database before serving
        demo_lines = _ensure_demo(db) if demo else []
    _banner(settings, demo_lines)
    _run_server(settings, workers)


def _run_server(settings: Settings, workers: int) -> None:
    """The app built from ``settings`` on the configured HTTP server."""
    if settings.tls_cert is not None:
        serve_tls.run(settings, ACCESS_LOG_FORMAT)  # HTTP and HTTPS, one process
    elif settings.server == "uvicorn":
        _run_uvicorn(settings, workers)
    else:
        _run_granian(settings, workers)


def _run_granian(settings: Settings, workers: int) -> None:
    """granian runs the app in worker processes, which import it by name: they receive
    the settings as one JSON variable."""
    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.log import LogLevels

    os.environ[HANDOVER_ENV] = settings.model_dump_json()  # inherited by the workers
    Granian(
        APP_FACTORY,
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=workers,
        loop=Loops.uvloop,
        backlog=2048,
        log_access=settings.access_log,
        log_access_format=ACCESS_LOG_FORMAT,
        log_level=LogLevels.info,
    ).serve()


def _run_uvicorn(settings: Settings, workers: int) -> None:
    """uvicorn on the app built from ``settings``: in this process, or in ``workers``
    processes that receive the settings as one JSON variable (they import the app by name)."""
    import uvicorn

    app: Any
    if workers == 1:
        from smsgate.app import serving_app

        app = functools.partial(serving_app, settings)  # called once uvicorn set up logging
    else:
        os.environ[HANDOVER_ENV] = settings.model_dump_json()  # inherited by the workers
        app = APP_FACTORY
    uvicorn.run(
        app,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        proxy_headers=False,  # X-Forwarded-For is honoured only from trusted_proxies
        server_header=False,
        access_log=settings.access_log,
        log_level="info",
    )


def worker(data_dir: DataDir = None) -> None:
    import asyncio
    import logging

    from smsgate.app import run_worker

    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s %(message)s")
    settings = build_settings(data_dir)
    _hold_data_dir(settings)  # until this process exits: `smsgate restore` refuses meanwhile
    out.print(f"smsgate worker dispatching from {_describe_db(settings)}")
    try:
        asyncio.run(run_worker(settings))
    except KeyboardInterrupt:
        out.print("stopped")


def _hold_data_dir(settings: Settings) -> None:
    """Take the data dir's shared lock for this process's life (SQLite only)."""
    if settings.database_url is None:
        datalock.hold_shared(settings.data_dir)


def migrate(data_dir: DataDir = None) -> None:
    settings = build_settings(data_dir)
    with open_database(settings=settings):
        pass  # opening it migrates it
    out.print(f"database is up to date: {_describe_db(settings)}")


@config_group.command("sample", help="Print a commented smsgate.toml with every setting.")
def config_sample() -> None:
    out.print(sample_toml(), end="", markup=False)


def _ensure_demo(db: Database) -> list[str]:
    """A demo account with a fresh password each start, so the printed one always works."""
    password = secrets.token_urlsafe(9)
    try:
        created = db.admin.create_account(DEMO_USER, password, DEMO_BALANCE)
        api_key = created.api_key
        db.admin.add_signature(DEMO_USER, "smsgate")
    except errors.Conflict:
        db.admin.configure(DEMO_USER, password=password, enabled=True)
        api_key = db.admin.new_api_key(DEMO_USER)
    info = db.admin.show(DEMO_USER)
    return [
        "Demo account:",
        f"  username  {DEMO_USER}",
        f"  password  {password}   (p = MD5: {password_md5(password)})",
        f"  ApiKey    {api_key}",
        f"  balance   {info.balance} units",
    ]


def _banner(settings: Settings, demo_lines: list[str]) -> None:
    shown_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    base = f"http://{shown_host}:{settings.port}"
    out.print(f"[bold]smsgate {__version__}[/bold] listening on {base}")
    if settings.tls_cert is not None:
        out.print(f"  HTTPS     https://{shown_host}:{settings.tls_port}")
    out.print(f"  Console   {base}/")
    out.print(f"  API docs  {base}/docs")
    out.print(f"  Database  {_describe_db(settings)}")
    for line in demo_lines:
        out.print(line, markup=False)
    if demo_lines:
        out.print(f"  Try: curl '{base}/query?u={DEMO_USER}&p=<ApiKey>'", markup=False)


def _describe_db(settings: Settings) -> str:
    if settings.database_url is None:
        return f"SQLite at {(settings.data_dir / 'smsgate.db').resolve()}"
    return settings.sqlalchemy_url.split("@")[-1]
