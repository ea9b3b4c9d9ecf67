"""Redis going away under a running server: an outage answered as one, not a crash.

The server keeps its rate limits in a Redis of this test's own (a `redis-server` on a free
port), so the test can stop and start it. While it is down:

- `/sms` answers 503 with Retry-After, sends nothing and charges nothing (no request is
  accepted without its caps checked);
- a wrong password answers 503 too (it cannot be counted against the guessing limits, so it
  is not checked), while reads of the JSON API, which need no rate check, are served;
- `/readyz` says not ready and why; `/healthz` (the process and its database) stays 200;
- the log says so in one line, without a traceback, however many requests were refused.

Once Redis is back, requests are accepted again within a few seconds, with no restart.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.accounts_support import SIGNATURE, Provisioner
from tests.e2e.server_support import ServerProcess, free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="needs the redis-server program"
)

CONTENT = f"【{SIGNATURE}】验证码 2468"


class RedisServer:
    """A throw-away redis-server that keeps nothing on disk."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._directory = directory
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self._directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, timeout=10.0)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(10)

    def _answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=0.5).ping())
        except redis.RedisError:
            return False


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def gate(
    own_redis: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("data")
    env = {"SMSGATE_REDIS_URL": own_redis.url, "SMSGATE_REDIS_PREFIX": "outage-test:"}
    proc = ServerProcess(data_dir, f"sqlite:///{data_dir / 'smsgate.db'}", env)
    try:
        yield proc.start()
    finally:
        proc.close()


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def send(gate: ServerProcess, api_key: str, username: str, phone: str) -> httpx.Response:
    params = {"u": username, "p": api_key, "m": phone, "c": CONTENT}
    return httpx.get(f"{gate.url}/sms", params=params, timeout=10.0)


def test_redis_down_refuses_with_503_charges_nothing_and_recovers(
    gate: ServerProcess, own_redis: RedisServer
) -> None:
    provisioner = Provisioner(gate)
    try:
        acct = provisioner.account(balance=10)
    finally:
        provisioner.close()
    first = send(gate, acct.api_key, acct.username, "13800138001")
    assert (first.status_code, first.text) == (200, "0")

    own_redis.stop()
    refused = [send(gate, acct.api_key, acct.username, f"1380013810{n}") for n in range(5)]
    for answer in refused:
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "1"
        assert answer.text == "Service Unavailable"
    # A read needs no rate check and is served. A wrong password must be counted against
    # the guessing limits, which it cannot be now: refused, never checked unthrottled.
    served = httpx.get(f"{gate.url}/v1/account", headers=bearer(acct.api_key), timeout=10.0)
    assert served.status_code == 200
    guess = send(gate, "0" * 32, acct.username, "13800138109")
    assert guess.status_code == 503
    ready = httpx.get(f"{gate.url}/readyz", timeout=10.0)
    assert ready.status_code == 503
    assert "redis" in ready.json()
    assert httpx.get(f"{gate.url}/healthz", timeout=10.0).status_code == 200

    # Nothing was charged or queued for the refused requests.
    ledger = gate.ledger(acct.username)
    assert [kind for _, kind, _ in ledger] == ["topup", "charge"]
    assert sum(delta for delta, _, _ in ledger) == 9

    logs = gate.logs()
    assert logs.count("redis does not answer") == 1
    assert "Traceback" not in logs

    own_redis.start()  # the same port: the server's client reconnects by itself
    back = wait_for(
        lambda: send(gate, acct.api_key, acct.username, "13800138002"),
        lambda answer: answer.status_code == 200,
        timeout=10.0,
        interval=0.3,
    )
    assert back.text == "0"
    assert httpx.get(f"{gate.url}/readyz", timeout=10.0).status_code == 200
    assert "Redis answers again" in gate.logs()
