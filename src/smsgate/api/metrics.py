"""Prometheus ``/metrics`` and ``/readyz``.

The hot path pays for two clock reads and a few dict additions per request
(:class:`RequestMetrics`, bumped by :class:`MetricsFront`): no lock, no label look-up,
and every label from a fixed set (endpoint names, wire codes, HTTP statuses). The
exporter turns those plain counts into Prometheus families when scraped
(``prometheus_client`` only renders them). Counts from the database (queue depth,
messages by state, pending pushes, paused accounts) are read when scraped, at most every
``db_every`` seconds, and describe the whole cluster; request counts are this process's.

Carrier link state comes from ``carrier_statuses()``: name -> a mapping with a ``state``
(``connected``, ``connecting``, ``down``...) and any numeric fields (``inflight``,
``window``), each exported as a gauge labelled by carrier.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smsgate import errors
from smsgate.api.absolute_form import origin_form
from smsgate.api.smsbao import PATHS
from smsgate.core.observed import (
    UP_STATES,
    QueueCounts,
    Tally,
    carriers_not_started,
    links_down,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SENDING = frozenset({"sms", "intl", "voice"})  # the endpoints whose latency is "accept"
WIRE = frozenset(PATHS)
KNOWN_WIRE_CODES = frozenset(errors.BY_WIRE)
# Seconds; the send path answers in a few ms, a group commit waits up to ~2 ms.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
ENDPOINTS = {path: name for name, paths in PATHS.items() for path in paths} | {
    "/metrics": "metrics",
    "/healthz": "healthz",
    "/readyz": "readyz",
    "/": "home",
}
PREFIXES = (("/v1/", "v1"), ("/docs", "docs"))
READY_TIMEOUT = 2.0  # seconds a database check may take before /readyz says not ready

CarrierStatuses = Callable[[], Mapping[str, Mapping[str, object]]]
Endpoint = Callable[[Request], Awaitable[Response]]


def endpoint_of(path: str) -> str:
    """The endpoint label: one of a fixed set, whatever the path."""
    name = ENDPOINTS.get(path)
    if name is not None:
        return name
    for prefix, label in PREFIXES:
        if path.startswith(prefix):
            return label
    return "other"


class RequestMetrics:
    """Requests by (endpoint, code) and the accept latency histogram, as plain counts."""

    def __init__(self, push_attempts: Tally[str] | None = None) -> None:
        self.requests: Tally[tuple[str, str]] = Tally()
        self.latency_buckets = [0] * (len(BUCKETS) + 1)  # the last one is +Inf
        self.latency_sum = 0.0
        # by outcome: 2xx, 3xx, 4xx, 5xx, none, refused (counted where pushes run)
        self.push_attempts = push_attempts if push_attempts is not None else Tally()
        self.login_throttles: Tally[str] = Tally()  # by scope: ip, account

    def observe(self, endpoint: str, code: str, seconds: float) -> None:
        self.requests.add((endpoint, code))
        if endpoint in SENDING:
            self.latency_buckets[bisect.bisect_left(BUCKETS, seconds)] += 1
            self.latency_sum += seconds


class MetricsFront:
    """The outermost ASGI callable: counts every HTTP request by endpoint and answer."""

    def __init__(self, app: ASGIApp, metrics: RequestMetrics) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        path = scope["path"]
        endpoint = endpoint_of(path if path.startswith("/") else origin_form(scope)["path"])
        started = time.perf_counter()
        answer: list[object] = [0, b""]  # status, the start of the body

        async def tap(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer[0] = message["status"]
            elif endpoint in WIRE and not answer[1]:
                answer[1] = message.get("body", b"")
            await send(message)

        try:
            await self._app(scope, receive, tap)
        finally:
            code = _code(endpoint, answer[0], answer[1])
            self._metrics.observe(endpoint, code, time.perf_counter() - started)


def _code(endpoint: str, status: object, body: object) -> str:
    """The wire code of an SMSBao answer (``0``, ``30``...), else the HTTP status."""
    if endpoint in WIRE and status == 200 and isinstance(body, bytes) and body:
        wire = body.split(b"\n", 1)[0].decode("ascii", "replace")
        return wire if wire in KNOWN_WIRE_CODES else "other"
    return str(status) if status else "none"


@dataclass
class DatabaseCounts:
    """The database's counts, read at most every ``every`` seconds (scrapes can pile up)."""

    read: Callable[[datetime], QueueCounts]
    every: float = 5.0
    _last: QueueCounts | None = None
    _at: float = float("-inf")

    async def current(self) -> QueueCounts | None:
        if time.monotonic() - self._at >= self.every:
            self._at = time.monotonic()
            try:
                self._last = await run_in_threadpool(self.read, datetime.now(UTC))
            except Exception:  # a scrape must answer; the gauges go missing instead
                self._last = None
        return self._last


# (numbers, bytes) of the in-process frequency history; None where it lives in Redis.
HistoryFootprint = Callable[[], tuple[int, int]]


class Exporter(Collector):
    """Renders the counts as Prometheus families when the registry is collected."""

    def __init__(
        self,
        metrics: RequestMetrics,
        carriers: CarrierStatuses,
        history: HistoryFootprint | None = None,
    ) -> None:
        self._metrics = metrics
        self._carriers = carriers
        self._history = history
        self.counts: QueueCounts | None = None

    def collect(self) -> Iterator[Metric]:
        yield from request_families(self._metrics)
        if self.counts is not None:
            yield from queue_families(self.counts)
        yield from carrier_families(self._carriers())
        if self._history is not None:
            yield from history_families(*self._history())


def request_families(m: RequestMetrics) -> Iterator[Metric]:
    requests = CounterMetricFamily(
        "smsgate_http_requests", "HTTP requests by endpoint and answer", labels=["endpoint", "code"]
    )
    for (endpoint, code), n in m.requests.items():
        requests.add_metric([endpoint, code], n)
    yield requests
    cumulative, buckets = 0, []
    for bound, n in zip((*BUCKETS, float("inf")), m.latency_buckets, strict=True):
        cumulative += n
        buckets.append((_bound(bound), cumulative))
    yield HistogramMetricFamily(
        "smsgate_accept_seconds",
        "Time to answer /sms, /wsms and /voice (check, charge, commit)",
        buckets=buckets,
        sum_value=m.latency_sum,
    )
    yield _by_one_label(
        "smsgate_push_attempts", "Reply push attempts by outcome", "outcome", m.push_attempts
    )
    yield _by_one_label(
        "smsgate_login_throttled",
        "Logins refused because of earlier failures, by what was throttled",
        "scope",
        m.login_throttles,
    )


def queue_families(counts: QueueCounts) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "smsgate_queue_depth", "Messages waiting for a carrier (outbox)", value=counts.queue_depth
    )
    states = GaugeMetricFamily(
        "smsgate_messages", "Messages created within a day, by state", labels=["state"]
    )
    for state, n in sorted(counts.messages_by_state.items()):
        states.add_metric([state], n)
    yield states
    yield GaugeMetricFamily(
        "smsgate_push_pending", "Reply pushes waiting for an attempt", value=counts.pushes_pending
    )
    yield GaugeMetricFamily(
        "smsgate_push_paused_accounts",
        "Accounts whose reply pushes are paused after repeated failures",
        value=counts.paused_accounts,
    )


def history_families(numbers: int, size: int) -> Iterator[Metric]:
    """The anti-bombing history of this process: every number sent to within a day."""
    yield GaugeMetricFamily(
        "smsgate_frequency_history_numbers",
        "Numbers remembered by this process for the frequency caps (kept for a day)",
        value=numbers,
    )
    yield GaugeMetricFamily(
        "smsgate_frequency_history_bytes",
        "Memory the frequency history of this process takes",
        value=size,
    )


def carrier_families(statuses: Mapping[str, Mapping[str, object]]) -> Iterator[Metric]:
    """Carrier link state: ``smsgate_carrier_up`` and one gauge per numeric field."""
    up = GaugeMetricFamily("smsgate_carrier_up", "1 if the carrier link is up", labels=["carrier"])
    fields: dict[str, GaugeMetricFamily] = {}
    for name, status in sorted(statuses.items()):
        up.add_metric([name], 1.0 if str(status.get("state", "")) in UP_STATES else 0.0)
        for key, value in status.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                family = fields.setdefault(
                    key,
                    GaugeMetricFamily(
                        f"smsgate_carrier_{key}", f"Carrier link: {key}", labels=["carrier"]
                    ),
                )
                family.add_metric([name], float(value))
    yield up
    yield from fields.values()


def _by_one_label(name: str, documentation: str, label: str, tally: Tally[str]) -> Metric:
    family = CounterMetricFamily(name, documentation, labels=[label])
    for key, n in tally.items():
        family.add_metric([str(key)], n)
    return family


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(value)


def metrics_endpoint(
    metrics: RequestMetrics,
    database: DatabaseCounts,
    carriers: CarrierStatuses,
    history: HistoryFootprint | None = None,
) -> Endpoint:
    registry = CollectorRegistry(auto_describe=False)
    exporter = Exporter(metrics, carriers, history)
    registry.register(exporter)
    ProcessCollector(registry=registry)  # resident memory, open files, CPU

    async def serve_metrics(_request: Request) -> Response:
        exporter.counts = await database.current()
        body = await run_in_threadpool(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE)

    return serve_metrics


def readyz_endpoint(
    ping: Callable[[], None],
    started: Callable[[], bool],
    carriers: CarrierStatuses,
    redis_ping: Callable[[], None] | None = None,
) -> Endpoint:
    """Ready: started, the database (and Redis, where the counters live there) answers
    now, every carrier started.

    A carrier whose link is down is listed (``links_down``) but does not make the node
    unready: it still accepts and queues, and a load balancer taking every node out
    because one upstream link flaps would stop the sending for good.
    """

    async def readyz(_request: Request) -> Response:
        problems: dict[str, object] = {}
        if not started():
            problems["server"] = "starting"
        database = await _problem(ping)
        if database is not None:
            problems["database"] = database
        redis = None if redis_ping is None else await _problem(redis_ping)
        if redis is not None:
            problems["redis"] = redis
        statuses = carriers()
        not_started = carriers_not_started(statuses)
        if not_started:
            problems["carriers"] = not_started
        if problems:
            return JSONResponse({"status": "not ready", **problems}, status_code=503)
        body: dict[str, object] = {"status": "ready", "database": "ok", "carriers": "ok"}
        if redis_ping is not None:
            body["redis"] = "ok"
        down = links_down(statuses)
        if down:
            body["links_down"] = down
        return JSONResponse(body)

    return readyz


async def _problem(ping: Callable[[], None]) -> str | None:
    """Why ``ping`` failed or took too long, or None."""
    try:
        await asyncio.wait_for(run_in_threadpool(ping), READY_TIMEOUT)
    except TimeoutError:
        return f"no answer within {READY_TIMEOUT:.0f} s"
    except Exception as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return text[:200]
    return None
