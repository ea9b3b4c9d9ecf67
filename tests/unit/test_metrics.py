"""`/readyz` and the metrics' pieces, with the database check and carriers as stand-ins."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.applications import Starlette

from smsgate import errors
from smsgate.api.metrics import (
    BUCKETS,
    RequestMetrics,
    carrier_families,
    endpoint_of,
    readyz_endpoint,
)
from smsgate.core.observed import Tally
from smsgate.services.observed import CountingPusher


def readyz(ping, started=True, carriers=None, redis_ping=None):  # type: ignore[no-untyped-def]
    app = Starlette()
    statuses = carriers if carriers is not None else {"simulator": {"state": "started"}}
    endpoint = readyz_endpoint(ping, lambda: started, lambda: statuses, redis_ping)
    app.add_route("/readyz", endpoint)

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/readyz")

    return asyncio.run(get())


def test_ready_when_database_answers_and_carriers_are_up() -> None:
    response = readyz(lambda: None)
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "database": "ok", "carriers": "ok"}


def test_not_ready_says_which_part() -> None:
    def down() -> None:
        raise ConnectionRefusedError("connection refused\nmore detail")

    response = readyz(
        down,
        started=False,
        carriers={"simulator": {"state": "ready"}, "smpp1": {"state": "broken"}},
    )
    assert response.status_code == 503
    assert response.json() == {
        "status": "not ready",
        "server": "starting",
        "database": "connection refused",
        "carriers": {"smpp1": "broken"},
    }


def test_redis_is_checked_where_the_counters_live_there() -> None:
    assert readyz(lambda: None, redis_ping=lambda: None).json()["redis"] == "ok"

    def down() -> None:
        raise errors.Unavailable("redis", "Connection refused")

    response = readyz(lambda: None, redis_ping=down)
    assert response.status_code == 503
    assert response.json() == {
        "status": "not ready",
        "redis": "redis unavailable: Connection refused",
    }


def test_a_link_that_is_down_is_reported_but_the_node_stays_ready() -> None:
    response = readyz(
        lambda: None,
        carriers={"simulator": {"state": "ready"}, "smpp1": {"state": "connecting"}},
    )
    assert response.status_code == 200
    assert response.json()["links_down"] == {"smpp1": "connecting"}


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("/sms", "sms"),
        ("/wsms/sms", "intl"),
        ("/query/", "query"),
        ("/v1/replies/123456789", "v1"),
        ("/docs", "docs"),
        ("/metrics", "metrics"),
        ("/readyz", "readyz"),
        ("/x" * 50, "other"),
    ],
)
def test_endpoint_labels_come_from_a_fixed_set(path: str, label: str) -> None:
    assert endpoint_of(path) == label


def test_accept_latency_goes_into_its_bucket_and_only_for_sending() -> None:
    m = RequestMetrics()
    m.observe("sms", "0", 0.003)
    m.observe("voice", "0", 99.0)
    m.observe("query", "0", 0.003)
    assert m.latency_buckets[BUCKETS.index(0.005)] == 1
    assert m.latency_buckets[-1] == 1  # +Inf
    assert sum(m.latency_buckets) == 2
    assert m.requests.get(("query", "0")) == 1


def test_carrier_statuses_become_gauges() -> None:
    families = {
        f.name: f
        for f in carrier_families(
            {"a": {"state": "connected", "inflight": 3}, "b": {"state": "down", "inflight": 0}}
        )
    }
    up = {s.labels["carrier"]: s.value for s in families["smsgate_carrier_up"].samples}
    assert up == {"a": 1.0, "b": 0.0}
    inflight = families["smsgate_carrier_inflight"].samples
    assert {s.labels["carrier"]: s.value for s in inflight} == {"a": 3.0, "b": 0.0}


class _Pusher:
    def __init__(self, answers: list[object]) -> None:
        self.answers = answers

    async def push(self, url: str, phone: str, content: str) -> tuple[int | None, str | None]:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    async def close(self) -> None:
        pass


def test_push_attempts_are_counted_by_outcome() -> None:
    tally: Tally[str] = Tally()
    answers: list[object] = [(200, "0"), (500, "x"), (None, None), errors.TargetRefused("no")]
    pusher = CountingPusher(_Pusher(answers), tally)

    async def go() -> None:
        for _ in range(3):
            await pusher.push("http://example.com/", "1", "c")
        with pytest.raises(errors.TargetRefused):
            await pusher.push("http://example.com/", "1", "c")

    asyncio.run(go())
    assert dict(tally.items()) == {"2xx": 1, "5xx": 1, "none": 1, "refused": 1}
