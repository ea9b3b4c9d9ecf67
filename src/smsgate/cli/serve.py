"""`smsgate serve`, `smsgate worker`, `smsgate migrate` and `smsgate config`."""

from __future__ import annotations

import functools
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from smsgate import __version__, errors
from smsgate.cli import datalock, http_limits, serve_tls
from smsgate.cli.context import DataDir, build_settings, open_database
from smsgate.cli.output import out
from smsgate.core.accounts import password_md5
from smsgate.settings import HANDOVER_ENV, Settings, sample_toml

if TYPE_CHECKING:
    from smsgate.database import Database

# What uvicorn imports in each process of `serve --workers N`.
APP_FACTORY = "smsgate.app:app_from_env"

DEMO_USER = "demo"
DEMO_BALANCE = 1000

config_group = typer.Typer(help="Settings: print a sample config file.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command(help="Run the gateway: SMSBao endpoints, JSON API and console on one port.")(serve)
    app.command(help="Create or upgrade the database schema (serve does this on start).")(migrate)
    app.command(help="Dispatch queued messages without serving HTTP (for scale-out).")(worker)
    app.add_typer(config_group, name="config")


def serve(
    host: Annotated[
        str | None, typer.Option(help="Listen address.", show_default="127.0.0.1")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Listen port.", show_default="8080")] = None,
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
    cmpp_port: Annotated[
        int | None, typer.Option(help="Serve CMPP to customers on this port [default: off].")
    ] = None,
) -> None:
    settings = build_settings(
        data_dir,
        host=host,
        port=port,
        run_worker=False if no_worker else None,
        tls_cert=tls_cert,
        tls_key=tls_key,
        tls_port=tls_port,
        cmpp_port=cmpp_port,
        **(_demo_policy() if demo else {}),
    )
    if settings.cmpp_port is not None and workers > 1:
        raise errors.InvalidInput("the CMPP server runs in one process: use --workers 1")
    serve_tls.check_tls(settings, workers)
    if workers > 1 and settings.database_url is None and settings.run_worker:
        raise errors.InvalidInput(
            "on SQLite one process dispatches: use `--workers N --no-worker` plus one "
            "`smsgate worker`, or PostgreSQL (SMSGATE_DATABASE_URL) to scale out"
        )
    _hold_data_dir(settings)  # until this process exits: `smsgate restore` refuses meanwhile
    _check_redis(settings)
    with open_database(settings=settings) as db:  # migrates a fresh database before serving
        demo_lines, api_key = _ensure_demo(db) if demo else ([], "")
    _banner(settings, demo_lines, api_key)
    _run_server(settings, workers)


def _run_server(settings: Settings, workers: int) -> None:
    """The app built from ``settings`` on the configured HTTP server."""
    _raise_open_file_limit()
    if settings.tls_cert is not None:
        serve_tls.run(settings)  # HTTP and HTTPS, one process
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
        http1_settings=http_limits.granian_http1(settings),
        log_access=False,  # ours, masked and the same on both servers (api/logging.py)
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
        **http_limits.uvicorn_options(settings),
        access_log=False,  # ours, masked and the same on both servers (api/logging.py)
        log_level="info",
    )


def _raise_open_file_limit() -> None:
    """Each connection holds a file: serve up to the hard limit, not the (often 1,024) soft
    one, so that a crowd of slow clients cannot exhaust them while the timeouts work."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def worker(data_dir: DataDir = None) -> None:
    import asyncio

    from smsgate.api.logging import install
    from smsgate.app import run_worker

    settings = build_settings(data_dir)
    install(settings.log_format)
    _hold_data_dir(settings)  # until this process exits: `smsgate restore` refuses meanwhile
    _check_redis(settings)
    with open_database(settings=settings):
        pass  # a schema of another version is refused here, with a clear message
    out.print(f"smsgate worker dispatching from {_describe_db(settings)}")
    try:
        asyncio.run(run_worker(settings))
    except KeyboardInterrupt:
        out.print("stopped")


def _check_redis(settings: Settings) -> None:
    """Refuse to start, saying why, when the configured Redis does not answer."""
    if settings.redis_url is None:
        return
    from smsgate.counters.redis import connect

    try:
        connect(settings.redis_url).close()
    except Exception as exc:  # redis-py's errors: refused, unknown host, auth...
        raise errors.InvalidInput(
            f"Redis at {_without_password(settings.redis_url)} does not answer ({exc}): "
            "start it, or fix SMSGATE_REDIS_URL"
        ) from None


def _without_password(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"


def _hold_data_dir(settings: Settings) -> None:
    """Take the data dir's shared lock for this process's life (SQLite only)."""
    if settings.database_url is None:
        datalock.hold_shared(settings.data_dir)


def migrate(data_dir: DataDir = None) -> None:
    settings = build_settings(data_dir)
    with open_database(settings=settings, upgrade=True):
        pass  # opening it migrates it
    out.print(f"database is up to date: {_describe_db(settings)}")


@config_group.command("sample", help="Print a commented smsgate.toml with every setting.")
def config_sample() -> None:
    out.print(sample_toml(), end="", markup=False)


def _demo_policy() -> dict[str, Any]:
    """What `--demo` relaxes so a newcomer's first tries do not meet the production caps:
    balance queries at any rate (unless SMSGATE_QUERY_INTERVAL_SECONDS says otherwise)."""
    if "SMSGATE_QUERY_INTERVAL_SECONDS" in os.environ:
        return {}
    return {"query_interval_seconds": 0.0}


def _demo_policy_lines(settings: Settings) -> list[str]:
    caps = ", ".join(
        f"{value}/{unit}"
        for value, unit in (
            (settings.freq_per_minute, "minute"),
            (settings.freq_per_hour, "hour"),
            (settings.freq_per_day, "day"),
        )
        if value is not None
    )
    query = settings.query_interval_seconds
    return [
        "Demo policy (development only):",
        "  /query    " + (f"once per {query:g} s" if query else "any time (44 never answered)"),
        f"  caps      per number {caps or 'none'}; the same text to a number once per "
        f"{settings.freq_same_content_seconds or 0:g} s: try a new number or text each time",
    ]


def _ensure_demo(db: Database) -> tuple[list[str], str]:
    """A demo account with a fresh password each start, so the printed one always works:
    the lines to print, and its ApiKey."""
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
    ], api_key


def _banner(settings: Settings, demo_lines: list[str], api_key: str) -> None:
    shown_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    base = f"http://{shown_host}:{settings.port}"
    out.print(f"[bold]smsgate {__version__}[/bold] listening on {base}")
    if settings.tls_cert is not None:
        out.print(f"  HTTPS     https://{shown_host}:{settings.tls_port}")
    if settings.cmpp_port is not None:
        out.print(f"  CMPP      {shown_host}:{settings.cmpp_port}")
    out.print(f"  Console   {base}/")
    out.print(
        "            sign in with an account's username and password; operators: "
        "`smsgate operator create NAME`",
        markup=False,
    )
    out.print(f"  API docs  {base}/docs")
    out.print(f"  Database  {_describe_db(settings)}")
    for line in demo_lines:
        out.print(line, markup=False)
    if demo_lines:
        for line in _demo_policy_lines(settings):
            out.print(line, markup=False)
        out.print(f"  Try: curl '{base}/query?u={DEMO_USER}&p={api_key}'", markup=False)


def _describe_db(settings: Settings) -> str:
    if settings.database_url is None:
        return f"SQLite at {(settings.data_dir / 'smsgate.db').resolve()}"
    return settings.sqlalchemy_url.split("@")[-1]
