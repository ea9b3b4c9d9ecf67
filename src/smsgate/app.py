"""The composition root: the only module that knows every concrete class."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import sqlalchemy as sa
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp

from smsgate import __version__
from smsgate.api import logging as access_logging
from smsgate.api import smsbao
from smsgate.api.absolute_form import AbsoluteFormMiddleware
from smsgate.api.v1 import routes as v1
from smsgate.clock import SystemClock
from smsgate.core.accounts import parse_cidr
from smsgate.counters.memory import MemoryCounters
from smsgate.services.admin import AdminService
from smsgate.services.auth import Authenticator, LoginLimits
from smsgate.services.query import QueryService
from smsgate.services.snapshot import SnapshotHolder
from smsgate.settings import Settings
from smsgate.store.accounts import SqlAccountStore
from smsgate.store.db import create_engine, migrate, pending_migrations

log = logging.getLogger("smsgate")


@dataclass
class Gateway:
    """Everything one process wires together from Settings."""

    settings: Settings
    engine: sa.Engine
    store: SqlAccountStore
    admin: AdminService

    @classmethod
    def open(cls, settings: Settings, *, migrate_schema: bool = True) -> Gateway:
        engine = create_engine(settings.sqlalchemy_url)
        if migrate_schema and pending_migrations(engine):
            migrate(engine)
        store = SqlAccountStore(engine)
        return cls(settings, engine, store, AdminService(store, SystemClock()))

    def close(self) -> None:
        self.engine.dispose()


def create_app(settings: Settings, gateway: Gateway | None = None) -> ASGIApp:
    """The ASGI application `smsgate serve` runs."""
    gw = gateway or Gateway.open(settings)
    clock = SystemClock()
    counters = MemoryCounters()
    snapshot = SnapshotHolder(gw.store)
    limits = LoginLimits(
        settings.login_failures_per_account,
        settings.login_failures_per_ip,
        settings.login_lockout_seconds,
    )
    deps = smsbao.SmsbaoDeps(
        auth=Authenticator(snapshot, counters, clock, limits),
        query=QueryService(gw.store, counters, clock, settings.query_interval_seconds),
        trusted_proxies=tuple(parse_cidr(c) for c in settings.trusted_proxies),
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        refresher = asyncio.create_task(_refresh_forever(snapshot, settings))
        try:
            yield
        finally:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
            gw.close()

    app = FastAPI(
        title="smsgate",
        version=__version__,
        summary="SMSBao-compatible SMS gateway: JSON API",
        description="The SMSBao wire endpoints (/sms, /wsms, /voice, /query) answer bare "
        "codes as text/plain and are documented in the README; this is the JSON API.",
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/v1/openapi.json",
        lifespan=lifespan,
    )
    app.router.routes.extend(smsbao.routes(deps))
    v1.install(app, deps, gw.store)
    app.add_route("/healthz", _healthz(gw.engine), methods=["GET"], include_in_schema=False)
    app.add_route("/", _home, methods=["GET"], include_in_schema=False)
    return AbsoluteFormMiddleware(app)


async def _refresh_forever(snapshot: SnapshotHolder, settings: Settings) -> None:
    while True:
        await asyncio.sleep(settings.snapshot_refresh_seconds)
        try:
            if await run_in_threadpool(snapshot.refresh):
                log.info("configuration changed; snapshot reloaded (rev %d)", snapshot.current.rev)
        except Exception:  # keep serving the last good snapshot; say why once per failure
            log.exception("could not refresh the account snapshot")


def _healthz(engine: sa.Engine):  # type: ignore[no-untyped-def]
    async def healthz(_request: Request) -> Response:
        def ping() -> None:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))

        try:
            await run_in_threadpool(ping)
        except Exception as exc:  # the point of a health check is to report, not raise
            return JSONResponse({"status": "error", "database": str(exc)}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok", "version": __version__})

    return healthz


async def _home(_request: Request) -> Response:
    return HTMLResponse(
        "<!doctype html><meta charset=utf-8><title>smsgate</title>"
        "<h1>smsgate</h1><p>SMSBao-compatible SMS gateway is running.</p>"
        "<ul><li><a href=/docs>JSON API reference</a></li>"
        "<li><a href=/healthz>Health</a></li></ul>"
    )


def app_from_env() -> ASGIApp:
    """Factory for `uvicorn --factory`: settings come from the environment."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s %(message)s")
    access_logging.install()
    return create_app(Settings())
