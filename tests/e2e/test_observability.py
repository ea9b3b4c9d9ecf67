"""`/metrics` and `/readyz` on the real server: what a Prometheus scrape and a load
balancer's readiness probe see after real traffic."""

from __future__ import annotations

import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.accounts_support import AccountPool
from tests.e2e.send_support import Gate, Numbers, content
from tests.e2e.server_support import ServerProcess, md5
from tests.support.waiting import wait_for

pytestmark = pytest.mark.backends("sqlite", "postgres")


@pytest.fixture(scope="module")
def shared_server_env() -> dict[str, str]:
    # Slow delivery: accepted messages stay `submitted` while the scrape looks.
    return {"SMSGATE_SIMULATOR_DELAY_SECONDS": "30", "SMSGATE_LOGIN_FAILURES_PER_ACCOUNT": "3"}


def scrape(server: ServerProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"{server.url}/metrics", trust_env=False)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str):  # type: ignore[no-untyped-def]
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_are_counted_by_endpoint_and_wire_code(
    shared_server: ServerProcess, gate: Gate, pool: AccountPool, numbers: Numbers
) -> None:
    acct = pool.take()
    before = scrape(shared_server)
    assert gate.sms(acct, numbers.one(), content()) == "0"
    assert gate.sms(acct, numbers.one(), content(), p="0" * 32) == "30"
    assert gate.sms(acct, "12", content()) == "51"
    after = scrape(shared_server)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("smsgate_http_requests_total", endpoint="sms", code="0") == 1
    assert delta("smsgate_http_requests_total", endpoint="sms", code="30") == 1
    assert delta("smsgate_http_requests_total", endpoint="sms", code="51") == 1
    assert delta("smsgate_accept_seconds_count") == 3
    assert delta("smsgate_accept_seconds_bucket", le="+Inf") == 3
    assert value(after, "process_resident_memory_bytes") > 0
    assert value(after, "process_open_fds") > 0


def test_paths_never_become_labels(shared_server: ServerProcess) -> None:
    for _ in range(5):
        httpx.get(f"{shared_server.url}/{uuid.uuid4().hex}", trust_env=False)
        httpx.get(f"{shared_server.url}/v1/replies/{uuid.uuid4().int}", trust_env=False)
    samples = scrape(shared_server)
    endpoints = {
        dict(labels)["endpoint"]
        for name, labels in samples
        if name == "smsgate_http_requests_total"
    }
    assert endpoints <= {"sms", "intl", "voice", "query", "v1", "docs", "metrics", "healthz"} | {
        "readyz",
        "home",
        "other",
    }
    assert value(samples, "smsgate_http_requests_total", endpoint="other", code="404") >= 5


def test_queue_and_message_states_come_from_the_database(
    shared_server: ServerProcess, gate: Gate, pool: AccountPool, numbers: Numbers
) -> None:
    acct = pool.take()
    for _ in range(3):
        assert gate.sms(acct, numbers.one(), content()) == "0"

    def submitted() -> float:
        return value(scrape(shared_server), "smsgate_messages", state="submitted")

    # The counts are read at most every 5 s: wait for a read after the sends.
    assert wait_for(lambda: submitted() >= 3, timeout=12), "not within 12 s: 3 submitted"
    samples = scrape(shared_server)
    assert ("smsgate_queue_depth", ()) in samples
    assert value(samples, "smsgate_push_paused_accounts") == 0
    assert value(samples, "smsgate_carrier_up", carrier="simulator") == 1
    if not shared_server.env.get("SMSGATE_REDIS_URL"):  # else the history is in Redis
        assert value(samples, "smsgate_frequency_history_numbers") >= 3
        assert value(samples, "smsgate_frequency_history_bytes") > 3 * 100


def test_login_throttles_are_counted(
    shared_server: ServerProcess, gate: Gate, pool: AccountPool, numbers: Numbers
) -> None:
    acct = pool.take()
    before = scrape(shared_server)
    for _ in range(4):  # three failures, then the account is throttled
        gate.sms(acct, numbers.one(), content(), p=md5("wrong"))
    after = scrape(shared_server)
    throttled = value(after, "smsgate_login_throttled_total", scope="account") - value(
        before, "smsgate_login_throttled_total", scope="account"
    )
    assert throttled >= 1


def test_readyz_says_ready_with_each_part(shared_server: ServerProcess) -> None:
    response = httpx.get(f"{shared_server.url}/readyz", trust_env=False)
    assert response.status_code == 200
    expected = {"status": "ready", "database": "ok", "carriers": "ok"}
    if shared_server.env.get("SMSGATE_REDIS_URL"):  # the counters are in Redis: checked too
        expected["redis"] = "ok"
    assert response.json() == expected
