"""The composition root of a server or worker process: the ASGI app and the long-running
parts. Together with `database.py` (the database side, which the CLI opens without loading
the web stack), the only place that knows every concrete class."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from smsgate import __version__, errors
from smsgate.api import guard, smsbao
from smsgate.api import logging as api_logging
from smsgate.api import metrics as observability
from smsgate.api.v1 import carriers as v1_carriers
from smsgate.api.v1 import replies as v1_replies
from smsgate.api.v1 import routes as v1
from smsgate.carriers import upstream
from smsgate.carriers.cmpp.server import CmppServer, ServerConfig
from smsgate.carriers.registry import CarrierRegistry
from smsgate.carriers.simulator import SimulatorCarrier, SimulatorConfig
from smsgate.clock import SystemClock
from smsgate.core.accounts import Product, parse_cidr
from smsgate.core.carriers import SIMULATOR
from smsgate.core.frequency import FrequencyLimits
from smsgate.core.observed import Tally
from smsgate.core.replies import IncomingReply
from smsgate.core.targets import TargetPolicy
from smsgate.counters.memory import MemoryCounters, MemoryFrequencyState
from smsgate.database import Database
from smsgate.ports import Counters, FrequencyState
from smsgate.pushers.http import HttpPusher
from smsgate.services.accept import AcceptService
from smsgate.services.auth import Authenticator, LoginLimits
from smsgate.services.cmpp import CmppService
from smsgate.services.dispatch import Dispatcher, DispatchSettings
from smsgate.services.frequency import FrequencyGuard
from smsgate.services.inbound import InboundService
from smsgate.services.observed import CountingPusher
from smsgate.services.outages import OutageLog
from smsgate.services.push import PushSettings, PushWorker
from smsgate.services.query import QueryService
from smsgate.services.snapshot import SnapshotHolder
from smsgate.settings import Settings, handed_over
from smsgate.store import db
from smsgate.store.cmpp import SqlCmppReports
from smsgate.store.push_queue import SqlPushQueue
from smsgate.store.stats import SqlStats
from smsgate.store.writer import GroupCommitWriter

log = logging.getLogger("smsgate")
REPORT_TIMEOUT_OPTION = "report_timeout_hours"  # a carrier's own, overriding the setting


@dataclass
class Runtime:
    """The long-running parts of a server or worker process, started and stopped together."""

    database: Database
    snapshot: SnapshotHolder
    writer: GroupCommitWriter
    dispatcher: Dispatcher | None
    frequency: FrequencyGuard
    health: DatabaseHealth
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    pushes: PushWorker | None = None  # runs wherever the dispatcher does
    carriers: CarrierRegistry | None = None  # runs wherever the dispatcher does
    node: str = field(default_factory=lambda: uuid.uuid4().hex)
    push_outcomes: Tally[str] = field(default_factory=Tally)  # /metrics
    redis_ping: Callable[[], None] | None = None  # /readyz, where the counters are in Redis
    started: bool = False

    def carrier_statuses(self) -> dict[str, dict[str, Any]]:
        """Each carrier's live state here, for `/metrics` and `/readyz` (none where no
        dispatcher runs)."""
        return self.carriers.statuses() if self.carriers is not None else {}

    def wake_pushes(self) -> None:
        if self.pushes is not None:
            self.pushes.wake()

    async def start(self) -> None:
        settings = self.database.settings
        since = SystemClock().now() - timedelta(seconds=self.frequency.keep_for)
        if not self.frequency.state.shared:  # else the history outlived us (Redis)
            sends = await run_in_threadpool(self.database.messages.recent_sends, since)
            rebuilt = self.frequency.rebuild(sends)
            if rebuilt:
                log.info("frequency caps rebuilt from %d recent message(s)", rebuilt)
        await self.writer.start()
        if self.dispatcher is not None:
            await self.dispatcher.start()
        if self.carriers is not None and self.dispatcher is not None:
            configs = await run_in_threadpool(self.database.carriers.carriers)
            await self.carriers.start(self.dispatcher, configs)
            self.tasks.append(asyncio.create_task(self._follow_carriers(self.carriers)))
        if self.pushes is not None:
            await self.pushes.start()
        self.tasks.append(
            asyncio.create_task(_refresh_forever(self.snapshot, settings, self.health))
        )
        self.started = True

    async def stop(self) -> None:
        self.started = False
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.writer.stop()
        if self.carriers is not None:
            await self.carriers.stop()
            with contextlib.suppress(Exception):
                await run_in_threadpool(self.database.carriers.forget_node, self.node)
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        if self.pushes is not None:
            await self.pushes.stop()
        self.database.close()

    async def _follow_carriers(self, registry: CarrierRegistry) -> None:
        """Keep the running carriers in step with their configuration, and tell other
        processes (`smsgate carrier show`) how they are doing."""
        store = self.database.carriers
        seen: object = None
        while True:
            await asyncio.sleep(CARRIER_SYNC_SECONDS)
            try:
                configs = await run_in_threadpool(store.carriers)
                if configs != seen:
                    changed = await registry.apply(configs)
                    if changed:
                        log.info("carriers reloaded: %s", ", ".join(changed))
                    seen = configs
                now = SystemClock().now()
                await run_in_threadpool(store.report_status, self.node, registry.statuses(), now)
            except Exception:  # keep the carriers that run; try again next time
                log.exception("could not follow the carrier configuration")


CARRIER_SYNC_SECONDS = 1.0  # a `carrier add/set/remove` is running within about this long


def build_runtime(settings: Settings, database: Database, *, with_dispatcher: bool) -> Runtime:
    clock = SystemClock()
    snapshot = SnapshotHolder(database.store, database.policy)
    state, counters, redis_ping = rate_state(settings)
    frequency = FrequencyGuard(state, counters, _frequency_defaults(settings))
    writer = GroupCommitWriter(
        database.messages, settings.group_commit_wait_ms / 1000, settings.group_commit_max
    )
    dispatcher = pushes = registry = None
    push_outcomes: Tally[str] = Tally()
    node = node_id()
    if with_dispatcher:
        # Template-based upstreams (aliyun, tencent) read the template mapping from here.
        upstream.set_template_source(lambda: snapshot.current.upstream_templates)
        push_queue = SqlPushQueue(database.engine)
        pushes = _push_worker(settings, push_queue, clock, push_outcomes, node)
        outcomes = database.outcomes
        simulator = SimulatorCarrier(
            _simulator_config(settings), awaiting=outcomes.awaiting_reports
        )
        registry = CarrierRegistry({SIMULATOR: simulator})
        dispatcher = Dispatcher(
            database.messages,
            registry.carriers,
            clock,
            DispatchSettings(
                node=node,
                batch_size=settings.dispatch_batch,
                validity=timedelta(hours=settings.message_validity_hours),
                claim_lease=timedelta(seconds=settings.claim_lease_seconds),
                single_node=database.engine.dialect.name == "sqlite",
            ),
            replies=_reply_intake(database.inbound, pushes),
            rules=registry.rules,
            routes=_routes(snapshot),
            housekeeping=[
                _report_timeout(database, settings),
                _give_up_held_replies(push_queue, settings),
            ],
        )
    health = DatabaseHealth(settings.snapshot_refresh_seconds)
    return Runtime(
        database,
        snapshot,
        writer,
        dispatcher,
        frequency,
        pushes=pushes,
        health=health,
        carriers=registry,
        node=node,
        push_outcomes=push_outcomes,
        redis_ping=redis_ping,
    )


def node_id() -> str:
    """This process's name in claims and carrier status rows: unique among the nodes of a
    cluster, and readable (host and pid) when an operator looks at who holds a claim."""
    return f"{socket.gethostname()[:20]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def rate_state(
    settings: Settings,
) -> tuple[FrequencyState, Counters, Callable[[], None] | None]:
    """The rate limits' memory: in this process, or in Redis shared by every node (then
    with a check that it answers, for `/readyz`)."""
    if settings.redis_url is None:
        return MemoryFrequencyState(), MemoryCounters(), None
    from smsgate.counters import redis as shared  # an optional dependency (extra `redis`)

    link = shared.Link(shared.connect(settings.redis_url))
    prefix = settings.redis_prefix
    return shared.RedisFrequencyState(link, prefix), shared.RedisCounters(link, prefix), link.ping


def _routes(snapshot: SnapshotHolder) -> Callable[[str], tuple[str, ...]]:
    """A product's route as the current snapshot has it (a deleted product: none)."""

    def route(product_id: str) -> tuple[str, ...]:
        product = snapshot.current.products.get(product_id)
        return product.route if product is not None else ()

    return route


def _push_worker(
    settings: Settings, queue: SqlPushQueue, clock: SystemClock, outcomes: Tally[str], node: str
) -> PushWorker:
    pusher = HttpPusher(
        settings.push_timeout_seconds,
        settings.push_concurrency,
        TargetPolicy.parse(settings.push_allowed_targets),
    )
    return PushWorker(
        queue,
        CountingPusher(pusher, outcomes),
        clock,
        PushSettings(
            node=node,
            schedule=settings.push_schedule,
            concurrency=settings.push_concurrency,
            per_account=settings.push_concurrency_per_account,
            # A lease shorter than an attempt would let a second worker push it again.
            claim_lease=timedelta(
                seconds=max(settings.claim_lease_seconds, 2 * settings.push_timeout_seconds)
            ),
            single_node=queue.engine.dialect.name == "sqlite",
            stop_grace_seconds=settings.push_timeout_seconds,
        ),
    )


def _report_timeout(database: Database, settings: Settings) -> Callable[[datetime], int]:
    """The dispatcher's chore: messages without a final report in time become `unknown`.

    The timeout is `report_timeout_hours`, or a carrier's own option of that name where
    its configuration has one (read each pass: carriers change while the server runs).
    """
    default = timedelta(hours=settings.report_timeout_hours)

    def run(now: datetime) -> int:
        cutoffs = {
            c.name: now - timedelta(hours=float(c.options[REPORT_TIMEOUT_OPTION]))
            for c in database.carriers.carriers()
            if REPORT_TIMEOUT_OPTION in c.options
        }
        moved = database.outcomes.time_out_reports(cutoffs, now - default, now)
        if moved:
            log.warning("%d message(s) got no delivery report in time: now `unknown`", moved)
        return moved

    return run


def _give_up_held_replies(queue: SqlPushQueue, settings: Settings) -> Callable[[datetime], int]:
    """The dispatcher's chore: a reply held for a disabled or expired account is pushed if
    the account is active again within the retry window (the push schedule's last retry);
    after that it fails, stays listed, and can be re-pushed by hand."""
    offsets = settings.push_schedule.retry_offsets
    window = offsets[-1] if offsets else timedelta(0)

    def run(now: datetime) -> int:
        return queue.give_up_held(now - window, now)

    return run


def _reply_intake(
    inbound: InboundService, pushes: PushWorker
) -> Callable[[IncomingReply], Awaitable[None]]:
    """What carriers' replies go to: stored (with their push), then the push worker woken."""

    async def take(reply: IncomingReply) -> None:
        await run_in_threadpool(inbound.receive, reply)
        pushes.wake()

    return take


def create_app(
    settings: Settings,
    database: Database | None = None,
    *,
    on_started: Callable[[], None] = lambda: None,
) -> ASGIApp:
    """The ASGI application `smsgate serve` runs; ``on_started`` runs once it has started."""
    gw = database or Database.open(settings)
    runtime = build_runtime(settings, gw, with_dispatcher=settings.run_worker)
    clock = SystemClock()
    limits = LoginLimits(
        settings.login_failures_per_account,
        settings.login_failures_per_ip,
        settings.login_lockout_seconds,
        settings.login_failures_per_network,
        settings.reveal_unknown_accounts,
    )
    counters = runtime.frequency.counters
    dispatcher = runtime.dispatcher
    metrics = observability.RequestMetrics(runtime.push_outcomes)
    deps = smsbao.SmsbaoDeps(
        auth=Authenticator(
            runtime.snapshot, counters, clock, limits, on_throttled=metrics.login_throttles.add
        ),
        query=QueryService(gw.store, counters, clock, settings.query_interval_seconds),
        accept=AcceptService(
            runtime.snapshot,
            runtime.frequency,
            runtime.writer,
            clock,
            notify=dispatcher.wake if dispatcher is not None else lambda: None,
        ),
        trusted_proxies=tuple(parse_cidr(c) for c in settings.trusted_proxies),
        password_checks=smsbao.PasswordChecks(settings.password_checks),
    )

    cmpp_server = _cmpp_server(settings, runtime, deps.accept)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        if cmpp_server is not None:
            await cmpp_server.start()
        on_started()
        try:
            yield
        finally:
            if cmpp_server is not None:
                await cmpp_server.stop()
            await runtime.stop()
            log.info("Application shutdown complete: queued writes committed, workers stopped")

    app = FastAPI(
        title="smsgate",
        version=__version__,
        summary="SMSBao-compatible SMS gateway: JSON API",
        description="The SMSBao wire endpoints (/sms, /wsms, /voice, /query) answer bare "
        "codes as text/plain and are documented in the README; this is the JSON API.",
        docs_url=None,  # served below, with Swagger UI's assets from the package (offline)
        redoc_url=None,
        openapi_url="/v1/openapi.json",
        lifespan=lifespan,
    )
    v1.install(app, deps, gw.store, gw.messages)
    v1_carriers.install(app, deps, gw.operators, gw.carrier_admin)
    v1_replies.install(
        app,
        deps,
        gw.inbound,
        runtime.wake_pushes,
        simulator=None
        if settings.simulator_api is False
        else lambda: simulator_api_on(settings, runtime.snapshot.current.products.values()),
    )
    _install_docs(app)
    app.add_route("/healthz", _healthz(runtime.health), methods=["GET"], include_in_schema=False)
    _install_console(app, settings, gw, runtime, deps)
    outages = OutageLog()
    _install_outage_answers(app, outages)
    access_log = api_logging.RequestLog(personal=settings.log_personal_data)
    front = _observed(app, smsbao.SmsbaoFront(deps, app), settings, runtime, metrics)
    return guard.InputGuard(
        front,
        body_timeout=settings.http_body_timeout_seconds,
        access_log=access_log if settings.access_log else None,
        outage=db.outage,
        outages=outages,
    )


def _install_outage_answers(app: FastAPI, outages: OutageLog) -> None:
    """The database or Redis not answering inside a route: 503 with Retry-After, as the
    guard answers it outside FastAPI (whose own last resort would answer 500 first)."""

    async def unavailable(request: Request, exc: Exception) -> Response:
        found = db.outage(exc)
        if found is None:
            raise exc  # not an outage: FastAPI's 500, and the guard logs it as a bug
        outages.seen(found)
        if request.url.path.startswith("/v1/"):
            return v1.error_response(found)
        return Response(
            "Service Unavailable: try again shortly\n",
            status_code=503,
            headers={"Retry-After": guard.RETRY_AFTER.decode()},
            media_type="text/plain",
        )

    kinds: tuple[type[Exception], ...] = (errors.Unavailable, *db.OUTAGE_ERRORS)
    for kind in kinds:
        app.add_exception_handler(kind, unavailable)


def _cmpp_server(settings: Settings, runtime: Runtime, accept: AcceptService) -> CmppServer | None:
    """The CMPP server for customers, when `cmpp_port` is set (docs/cmpp.md)."""
    if settings.cmpp_port is None:
        return None
    clock = SystemClock()
    service = CmppService(runtime.snapshot, accept, SqlCmppReports(runtime.database.engine), clock)
    config = ServerConfig(
        host=settings.host,
        port=settings.cmpp_port,
        gateway=settings.cmpp_gateway_code,
        window=settings.cmpp_window,
        connections_per_account=settings.cmpp_connections_per_account,
        report_poll_seconds=settings.cmpp_report_poll_seconds,
    )
    return CmppServer(service, config, clock.now)


DOCS_ASSETS = "/docs/assets"


def _install_docs(app: FastAPI) -> None:
    """`/docs`: Swagger UI from the `swagger-ui-bundle-v2` package, so that the page works
    without internet (FastAPI's default loads it from a CDN). FastAPI's documented recipe
    for self-hosting: its own page, with the asset URLs pointed at a static mount."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from starlette.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    async def docs(_request: Request) -> Response:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/v1/openapi.json",
            title=f"{app.title} - JSON API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )

    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")
    app.add_route("/docs", docs, methods=["GET"], include_in_schema=False)


def _observed(
    app: FastAPI,
    front: ASGIApp,
    settings: Settings,
    runtime: Runtime,
    metrics: observability.RequestMetrics,
) -> ASGIApp:
    """`/readyz` always; `/metrics` and the request counts unless turned off."""
    stats = SqlStats(runtime.database.engine)
    ready = observability.readyz_endpoint(
        stats.ping, lambda: runtime.started, runtime.carrier_statuses, runtime.redis_ping
    )
    app.add_route("/readyz", ready, methods=["GET"], include_in_schema=False)
    if not settings.metrics:
        return front
    state = runtime.frequency.state
    serve_metrics = observability.metrics_endpoint(
        metrics,
        observability.DatabaseCounts(stats.counts),
        runtime.carrier_statuses,
        state.footprint if isinstance(state, MemoryFrequencyState) else None,
    )
    app.add_route("/metrics", serve_metrics, methods=["GET"], include_in_schema=False)
    return observability.MetricsFront(front, metrics)


async def run_worker(settings: Settings) -> None:
    """`smsgate worker`: dispatch and reply pushes, no HTTP (scale-out)."""
    runtime = build_runtime(settings, Database.open(settings), with_dispatcher=True)
    await runtime.start()
    _tune_garbage_collector()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):  # stop cleanly: submits in flight recorded
        loop.add_signal_handler(sig, stop.set)
    log.info("worker %s started", runtime.node)
    try:
        await stop.wait()
    finally:
        await runtime.stop()
        log.info("worker %s stopped", runtime.node)


def _tune_garbage_collector() -> None:
    """Keep the collector's pauses out of the send path's latency.

    Full collections paused the event loop for 70-140 ms every few seconds under load,
    the whole of `/sms`'s p99. For the server and worker processes only: it changes the
    whole interpreter. Everything loaded at start (modules, libraries' data, the
    snapshot) lives as long as the process: frozen, the collector no longer walks it.
    A larger first generation makes every generation's passes rarer; a request leaves
    little cyclic garbage, so memory barely moves (docs/decisions.md).
    """
    gc.freeze()
    gc.set_threshold(50_000, 10, 10)


def simulator_api_on(settings: Settings, products: Iterable[Product]) -> bool:
    """Whether `POST /v1/simulator/replies` answers now: as set, or with the default
    ``auto`` only while some product routes to the built-in simulator carrier (with real
    carriers, made-up replies would reach customers' URLs as if users had sent them)."""
    if settings.simulator_api != "auto":
        return bool(settings.simulator_api)
    return any(SIMULATOR in product.route for product in products)


def _frequency_defaults(settings: Settings) -> FrequencyLimits:
    return FrequencyLimits(
        per_minute=settings.freq_per_minute,
        per_hour=settings.freq_per_hour,
        per_day=settings.freq_per_day,
        same_content_window=settings.freq_same_content_seconds,
        daily_account_cap=settings.daily_account_cap,
    )


def _simulator_config(settings: Settings) -> SimulatorConfig:
    return SimulatorConfig(
        delay_seconds=settings.simulator_delay_seconds,
        failure_ratio=settings.simulator_failure_ratio,
        fail_suffix=settings.simulator_fail_suffix,
        stall_suffix=settings.simulator_stall_suffix,
        throttle_suffix=settings.simulator_throttle_suffix,
        reject_suffix=settings.simulator_reject_suffix,
    )


class DatabaseHealth:
    """What `/healthz` says of the database: the last contact of the snapshot refresh.

    The refresh reads the database every `snapshot_refresh_seconds` anyway; a health
    check that queried it again on every call would let a load balancer's probes add
    load exactly when the database is struggling.
    """

    def __init__(self, refresh_seconds: float) -> None:
        self._stale_after = max(5.0, 4 * refresh_seconds)
        self._last_ok = time.monotonic()
        self._last_error = "no contact with the database yet"

    def ok(self) -> None:
        self._last_ok = time.monotonic()

    def failed(self, exc: Exception) -> None:
        self._last_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__

    def problem(self) -> str | None:
        quiet = time.monotonic() - self._last_ok
        if quiet <= self._stale_after:
            return None
        return f"no successful contact for {quiet:.0f} s: {self._last_error}"


async def _refresh_forever(
    snapshot: SnapshotHolder, settings: Settings, health: DatabaseHealth
) -> None:
    while True:
        await asyncio.sleep(settings.snapshot_refresh_seconds)
        try:
            changed = await asyncio.to_thread(snapshot.refresh)
        except Exception as exc:  # keep serving the last good snapshot; say why once per failure
            health.failed(exc)
            log.exception("could not refresh the account snapshot")
            continue
        health.ok()
        if changed:
            log.info("configuration changed; snapshot reloaded (rev %d)", snapshot.current.rev)


def _healthz(health: DatabaseHealth):  # type: ignore[no-untyped-def]
    async def healthz(_request: Request) -> Response:
        problem = health.problem()
        if problem is not None:
            return JSONResponse({"status": "error", "database": problem}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok", "version": __version__})

    return healthz


def _install_console(
    app: FastAPI, settings: Settings, gw: Database, runtime: Runtime, deps: smsbao.SmsbaoDeps
) -> None:
    """The web console at `/` (sign-in, customer and operator pages, the live inbox)."""
    from smsgate.console import routes as console
    from smsgate.console.deps import ConsoleDeps, PushProbe
    from smsgate.console.sessions import secret_key

    targets = TargetPolicy.parse(settings.push_allowed_targets)

    async def test_push(url: str) -> PushProbe:
        pusher = HttpPusher(settings.push_timeout_seconds, 1, targets)
        started = time.monotonic()
        try:
            status, _body = await pusher.push(url, "13800138000", "smsgate test push")
        finally:
            await pusher.close()
        millis = (time.monotonic() - started) * 1000
        return PushProbe(status, millis, None if status is not None else "no answer")

    console_deps = ConsoleDeps(
        snapshot=runtime.snapshot,
        auth=deps.auth,
        admin=gw.admin,
        policy=gw.policy_admin,
        inbound=gw.inbound,
        carriers=gw.carrier_admin,
        store=gw.console,
        operators=gw.operators,
        messages=gw.messages,
        accept=deps.accept,
        clock=SystemClock(),
        wake_pushes=runtime.wake_pushes,
        simulator_on=lambda: (
            settings.simulator_api is not False
            and simulator_api_on(settings, runtime.snapshot.current.products.values())
        ),
        test_push=test_push,
        secret=secret_key(settings.console_secret, settings.data_dir),
        session_seconds=settings.console_session_hours * 3600,
    )
    app.router.routes.extend(console.routes(console_deps))
    app.mount("/console/static", console.static_files(), name="console-static")


def serving_app(settings: Settings) -> ASGIApp:
    """What `smsgate serve` runs: the app, with the server's logging (after the HTTP
    server's own, which may already have configured some loggers)."""
    api_logging.install(settings.log_format)
    if settings.server == "uvicorn":
        from smsgate.api import uvicorn_http

        uvicorn_http.use_head_timeout(settings.http_header_timeout_seconds)
    return create_app(settings, on_started=_tune_garbage_collector)


def app_from_env() -> ASGIApp:
    """Factory for `uvicorn --factory` (each process of `serve --workers N`): the settings
    the parent handed over, else those of the environment (see `settings.handed_over`)."""
    return serving_app(handed_over())
