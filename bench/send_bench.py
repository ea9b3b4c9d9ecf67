"""Send-path benchmark: a real `smsgate serve` process, real HTTP, loopback only.

Starts a server on a free 127.0.0.1 port with a temporary SQLite data dir (or a scratch
database created on the PostgreSQL server named by --database-url and dropped afterwards),
creates one account with a huge balance and lifts the frequency caps via the environment,
then drives the SMSBao `/sms` endpoint with concurrent httpx.AsyncClient connections:

  single  N requests to one number each
  bulk    M requests to 99 numbers each

and prints one table row per scenario: requests, concurrency, accepted requests per
second, messages per second, p50 and p99 latency, errors (any answer but `0`, or none).
Every request has a distinct content. The dispatcher runs in the server as it does by
default (simulator carrier), unless --no-dispatch. Bounded: each scenario stops issuing
requests after --max-seconds.

    python bench/send_bench.py
    python bench/send_bench.py --database-url postgresql://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

USER = "bench"
PASSWORD = "bench-password-1"
BALANCE = 10**11
READY_TIMEOUT = 30.0
ENV = {
    "SMSGATE_FREQ_PER_MINUTE": "1000000000",
    "SMSGATE_FREQ_PER_HOUR": "1000000000",
    "SMSGATE_FREQ_PER_DAY": "1000000000",
    "SMSGATE_FREQ_SAME_CONTENT_SECONDS": "0",
    "SMSGATE_SIMULATOR_DELAY_SECONDS": "0.05",
}


@dataclass
class Result:
    scenario: str
    concurrency: int
    numbers: int
    latencies: list[float] = field(default_factory=list)  # seconds, accepted requests only
    errors: int = 0
    elapsed: float = 0.0
    sent: int = 0

    @property
    def accepted(self) -> int:
        return len(self.latencies)

    def row(self) -> list[str]:
        lat = sorted(self.latencies)
        rate = self.accepted / self.elapsed if self.elapsed else 0.0
        return [
            self.scenario,
            str(self.sent),
            str(self.concurrency),
            f"{rate:.0f}",
            f"{rate * self.numbers:.0f}",
            f"{_pct(lat, 50) * 1000:.1f}",
            f"{_pct(lat, 99) * 1000:.1f}",
            str(self.errors),
        ]


HEADER = ["scenario", "requests", "concurrency", "req/s", "msg/s", "p50 ms", "p99 ms", "errors"]


def _pct(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return float("nan")
    if len(sorted_values) == 1:
        return sorted_values[0]
    return statistics.quantiles(sorted_values, n=100, method="inclusive")[int(pct) - 1]


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(HEADER, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        cells = [r[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- the server ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def scratch_postgres(url: str) -> Iterator[str]:
    """A fresh database on the server `url` points at, dropped afterwards."""
    import sqlalchemy as sa

    admin_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"smsgate_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.engine.make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


class Server:
    def __init__(self, data_dir: Path, database_url: str | None, dispatch: bool) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMSGATE_")}
        env.update(ENV, SMSGATE_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
        if database_url:
            env["SMSGATE_DATABASE_URL"] = database_url
        self.env = env
        self.dispatch = dispatch
        self.log = data_dir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "smsgate", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"smsgate {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def start(self) -> None:
        cmd = [sys.executable, "-m", "smsgate", "serve", "--port", str(self.port)]
        if not self.dispatch:
            cmd.append("--no-worker")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited early:\n{self.log.read_text(errors='replace')}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise SystemExit(f"server not ready in {READY_TIMEOUT} s; log: {self.log}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


# -- the load ----------------------------------------------------------------------------


def numbers(count: int, rng: random.Random) -> str:
    return ",".join(f"139{n:08d}" for n in rng.sample(range(10**8), count))


async def drive(
    url: str, scenario: str, requests: int, concurrency: int, n_numbers: int, max_seconds: float
) -> Result:
    """`concurrency` connections, each its own AsyncClient (one keep-alive connection):
    httpx's pool costs client CPU per pooled connection, and the client shares the
    machine with the server."""
    result = Result(scenario, concurrency, n_numbers)
    md5 = hashlib.md5(PASSWORD.encode()).hexdigest()
    counter = iter(range(requests))
    rng = random.Random(f"{scenario}-{requests}")
    payloads = [numbers(n_numbers, rng) for _ in range(min(requests, 500))]
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [
        httpx.AsyncClient(base_url=url, limits=limits, timeout=30.0) for _ in range(concurrency)
    ]
    started = time.perf_counter()
    stop_at = started + max_seconds

    async def worker(client: httpx.AsyncClient) -> None:
        for i in counter:
            if time.perf_counter() > stop_at:
                return
            params = {
                "u": USER,
                "p": md5,
                "m": payloads[i % len(payloads)],
                "c": f"【短信宝】基准{scenario}{i}",
            }
            t0 = time.perf_counter()
            result.sent += 1
            try:
                response = await client.get("/sms", params=params)
            except httpx.HTTPError:
                result.errors += 1
                continue
            if response.status_code == 200 and response.text == "0":
                result.latencies.append(time.perf_counter() - t0)
            else:
                result.errors += 1

    try:
        await asyncio.gather(*(worker(c) for c in clients))
        result.elapsed = time.perf_counter() - started
    finally:
        for client in clients:
            await client.aclose()
    return result


async def warm_up(url: str) -> None:
    """The first login verifies the password hash (argon2); later ones hit the cache."""
    md5 = hashlib.md5(PASSWORD.encode()).hexdigest()
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        answer = await client.get(
            "/sms", params={"u": USER, "p": md5, "m": "13900000000", "c": "【短信宝】预热"}
        )
    if answer.text != "0":
        raise SystemExit(f"warm-up request answered {answer.text!r}")


def run(args: argparse.Namespace) -> list[Result]:
    data_dir = Path(tempfile.mkdtemp(prefix="smsgate-bench-"))
    try:
        with contextlib.ExitStack() as stack:
            db = None
            if args.database_url:
                db = stack.enter_context(scratch_postgres(args.database_url))
            server = Server(data_dir, db, dispatch=not args.no_dispatch)
            server.cli("migrate")
            server.cli("account", "create", USER, "--password", PASSWORD, "--balance", str(BALANCE))
            server.cli("signature", "add", USER, "短信宝")
            server.start()
            stack.callback(server.stop)
            asyncio.run(warm_up(server.url))
            results = []
            plan = [
                ("single", args.requests, args.concurrency, 1),
                ("bulk-99", args.bulk_requests, args.bulk_concurrency, 99),
            ]
            for scenario, requests, concurrency, n in plan:
                if requests <= 0:
                    continue
                results.append(
                    asyncio.run(
                        drive(server.url, scenario, requests, concurrency, n, args.max_seconds)
                    )
                )
                print(table([results[-1].row()]).splitlines()[-1], file=sys.stderr)
            return results
    finally:
        if args.keep:
            print(f"data dir kept: {data_dir}", file=sys.stderr)
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Benchmark the smsgate send path (/sms) against a real server process.",
    )
    parser.add_argument("--requests", type=int, default=2000, help="single-number requests")
    parser.add_argument("--concurrency", type=int, default=32, help="connections (single)")
    parser.add_argument("--bulk-requests", type=int, default=200, help="99-number requests")
    parser.add_argument("--bulk-concurrency", type=int, default=8, help="connections (bulk)")
    parser.add_argument(
        "--database-url",
        help="PostgreSQL server URL (postgresql://user@host/db); a scratch database is "
        "created on it and dropped afterwards. Default: SQLite in a temp dir.",
    )
    parser.add_argument(
        "--no-dispatch", action="store_true", help="serve --no-worker: measure accepting only"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=120.0, help="stop each scenario after this long"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp data dir and log")
    args = parser.parse_args(argv)
    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(f"smsgate send benchmark: {backend}, {os.cpu_count()} CPUs", file=sys.stderr)
    results = run(args)
    print(table([r.row() for r in results]))


if __name__ == "__main__":
    main()
