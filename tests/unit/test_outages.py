"""Outages of what smsgate depends on: told apart from bugs, answered 503, logged once.

- ``counters.redis.Link``: a failed call opens a pause in which calls fail at once
  (they run on the event loop), then one call tries again; its recovery is logged;
- ``store.db.outage``: which database errors are outages (a lost connection, a locked
  SQLite file) and which are bugs (SQL that SQLite cannot run);
- the input guard answers an outage 503 with Retry-After and one log line, a bug 500;
- the JSON API renders ``errors.Unavailable`` as 503 ``unavailable``, without the
  service's address.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3

import httpx
import pytest
import redis
import sqlalchemy as sa
from starlette.types import Receive, Scope, Send

from smsgate import errors
from smsgate.api.guard import InputGuard
from smsgate.api.v1.routes import error_response
from smsgate.counters.redis import Link
from smsgate.services.outages import OutageLog
from smsgate.store.db import outage


class Flaky:
    """A Redis call that fails while ``down`` and counts how often it was made."""

    def __init__(self) -> None:
        self.down = True
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.down:
            raise redis.ConnectionError(
                "Error 111 connecting to 127.0.0.1:6390. Connection refused."
            )
        return "PONG"


def test_a_failed_redis_call_pauses_the_next_ones_then_tries_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    link = Link(redis.Redis(), pause=0.2)  # the client is never used: calls go to Flaky
    flaky = Flaky()
    with pytest.raises(errors.Unavailable) as first:
        link.call(flaky)
    assert first.value.service == "redis"
    assert "Connection refused" in first.value.reason
    for _ in range(50):  # within the pause: refused at once, Redis not asked
        with pytest.raises(errors.Unavailable):
            link.call(flaky)
    assert flaky.calls == 1
    flaky.down = False
    asyncio.run(asyncio.sleep(0.25))
    with caplog.at_level(logging.WARNING, logger="smsgate.counters.redis"):
        assert link.call(flaky) == "PONG"
    assert flaky.calls == 2
    assert "Redis answers again" in caplog.text


def test_redis_errors_that_are_not_outages_pass_through() -> None:
    def bad_script() -> None:
        raise redis.ResponseError("ERR Error running script")

    with pytest.raises(redis.ResponseError):
        Link(redis.Redis()).call(bad_script)


def _wrapped(original: Exception) -> sa.exc.OperationalError:
    return sa.exc.OperationalError("SELECT 1", {}, original)


def test_database_errors_that_are_outages() -> None:
    locked = outage(_wrapped(sqlite3.OperationalError("database is locked")))
    assert locked is not None
    assert locked.service == "database"
    assert locked.reason == "database is locked"

    class PsycopgOperationalError(Exception):  # psycopg's: any lost or refused connection
        pass

    lost = outage(_wrapped(PsycopgOperationalError("server closed the connection\ndetail")))
    assert lost is not None
    assert lost.reason.startswith("server closed the connection")
    assert outage(sa.exc.TimeoutError("QueuePool limit reached")) is not None
    assert outage(errors.Unavailable("redis", "down")) is not None


def test_database_errors_that_are_bugs() -> None:
    assert outage(_wrapped(sqlite3.OperationalError("no such table: nowhere"))) is None
    assert outage(sa.exc.IntegrityError("INSERT", {}, Exception("duplicate"))) is None
    assert outage(ValueError("no")) is None


def _guarded(exc: Exception, outages: OutageLog) -> InputGuard:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise exc

    return InputGuard(app, outage=outage, outages=outages)


def _get(app: InputGuard) -> httpx.Response:
    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/sms?u=a&p=b&m=13800138000&c=x")

    return asyncio.run(get())


def test_the_guard_answers_an_outage_503_and_logs_it_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outages = OutageLog()
    app = _guarded(_wrapped(sqlite3.OperationalError("database is locked")), outages)
    with caplog.at_level(logging.INFO):
        answers = [_get(app) for _ in range(5)]
    for answer in answers:
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "1"
    lines = [r for r in caplog.records if "does not answer" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].getMessage() == (
        "database does not answer (database is locked): 1 request(s) refused since the last report"
    )
    assert "Traceback" not in caplog.text


def test_the_guard_answers_a_bug_500() -> None:
    app = _guarded(_wrapped(sqlite3.OperationalError("no such table: nowhere")), OutageLog())
    assert _get(app).status_code == 500


def test_the_outage_log_reports_again_with_the_count() -> None:
    log = OutageLog(every=0.0)
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("smsgate.outage")
    logger.addHandler(handler)
    try:
        log.seen(errors.Unavailable("redis", "refused"))
        log.seen(errors.Unavailable("redis", "refused"))
    finally:
        logger.removeHandler(handler)
    assert records == [
        "redis does not answer (refused): 1 request(s) refused since the last report",
        "redis does not answer (refused): 1 request(s) refused since the last report",
    ]


def test_the_json_api_says_unavailable_without_the_address() -> None:
    response = error_response(errors.Unavailable("redis", "Error 111 connecting to 10.1.2.3:6379"))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert b"10.1.2.3" not in response.body
    assert b'"code":"unavailable"' in response.body
    assert b'"detail":"redis does not answer"' in response.body
