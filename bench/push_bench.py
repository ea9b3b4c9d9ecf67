"""Reply-push benchmark: a real `smsgate serve` process pushing a backlog of replies to a
fast local receiver, loopback only.

For each receiver latency (--latency-ms: 0 answers at once, 50 is a typical web app) and
each push concurrency (SMSGATE_PUSH_CONCURRENCY) in --concurrency:

1. with no server running, N replies are stored through the inbound service (as
   `smsgate simulate reply` does: one transaction each, reply + push row), spread over
   --accounts accounts whose MO URL is the receiver;
2. the server starts and works off the backlog; the receiver (its own process, a minimal
   keep-alive HTTP/1.1 server answering `0`) timestamps every request;
3. pushes/s = requests between the first and the last arrival / the time between them;
   afterwards every push must be `succeeded` in the database.

Also reported: intake, stored replies per second (single writer, one transaction each).

    python bench/push_bench.py
    python bench/push_bench.py --database-url postgresql://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import multiprocessing as mp
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

import httpx
import sqlalchemy as sa

from smsgate.core.replies import IncomingReply
from smsgate.database import Database
from smsgate.settings import Settings
from smsgate.store import tables as t

READY_TIMEOUT = 30.0
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\n0"
EXT_CODES = itertools.count(100)
CONTENT = "回复 TD? 好的 😀 & = + % \n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the receiver (its own process) ------------------------------------------------------


def receive_forever(
    port: int,
    latency: float,
    count: Synchronized[int],
    first: Synchronized[float],
    last: Synchronized[float],
) -> None:
    """Answer `0` to every request on keep-alive connections, ``latency`` seconds later
    (without blocking other connections); count and timestamp the requests."""

    class Push(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while b"\r\n\r\n" in self.buffer:
                _, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
                now = time.time()
                with count.get_lock():
                    if count.value == 0:
                        first.value = now
                    count.value += 1
                    last.value = now
                if latency:
                    loop.call_later(latency, self.transport.write, ANSWER)  # type: ignore[attr-defined]
                else:
                    self.transport.write(ANSWER)  # type: ignore[attr-defined]

    loop = asyncio.new_event_loop()

    async def serve() -> None:
        server = await loop.create_server(Push, "127.0.0.1", port, backlog=1024)
        await server.serve_forever()

    loop.run_until_complete(serve())


class Receiver:
    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.port = free_port()
        ctx = mp.get_context("spawn")
        self.count = ctx.Value("q", 0)
        self.first = ctx.Value("d", 0.0)
        self.last = ctx.Value("d", 0.0)
        self.proc = ctx.Process(
            target=receive_forever,
            args=(self.port, latency, self.count, self.first, self.last),
            daemon=True,
        )

    def start(self) -> None:
        self.proc.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.05)
        raise RuntimeError("receiver did not start")

    def reset(self) -> None:
        with self.count.get_lock():
            self.count.value, self.first.value, self.last.value = 0, 0.0, 0.0

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.join(5)


# -- the server --------------------------------------------------------------------------


class Server:
    def __init__(self, data_dir: Path, database_url: str | None, concurrency: int) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMSGATE_")}
        env.update(
            SMSGATE_DATA_DIR=str(data_dir),
            SMSGATE_PUSH_CONCURRENCY=str(concurrency),
            SMSGATE_PUSH_ALLOWED_TARGETS="127.0.0.1",  # the receiver runs on loopback
            PYTHONUNBUFFERED="1",
        )
        if database_url:
            env["SMSGATE_DATABASE_URL"] = database_url
        self.env = env
        self.log = (data_dir / f"server-{concurrency}.log").open("wb")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "smsgate", "serve", "--port", str(self.port)],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).is_success:
                    return
            time.sleep(0.05)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(15)
        self.log.close()


# -- one scenario ------------------------------------------------------------------------


def setup_accounts(database: Database, receiver: Receiver, accounts: int) -> list[str]:
    codes = []
    for index in range(accounts):
        name, code = f"bench{index}_{uuid.uuid4().hex[:4]}", str(next(EXT_CODES))
        database.admin.create_account(name, secrets.token_urlsafe(12))
        url = f"http://127.0.0.1:{receiver.port}/mo?account={index}"
        database.admin.configure(name, mo_url=url, ext_code=code)
        codes.append(code)
    return codes


def inject(database: Database, codes: list[str], count: int) -> float:
    """Store ``count`` replies round-robin over the accounts; returns replies per second."""
    started = time.perf_counter()
    for index in range(count):
        phone = f"139{index % 100_000_000:08d}"
        reply = IncomingReply("bench", phone, codes[index % len(codes)], CONTENT, datetime.now(UTC))
        database.inbound.receive(reply)
    return count / (time.perf_counter() - started)


def pending(database: Database) -> int:
    with database.engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(t.pushes)
                .where(t.pushes.c.state != "succeeded")
            ).scalar_one()
        )


def scenario(
    args: argparse.Namespace,
    data_dir: Path,
    database_url: str | None,
    database: Database,
    receiver: Receiver,
    codes: list[str],
    concurrency: int,
) -> list[str]:
    intake = inject(database, codes, args.replies)
    receiver.reset()
    server = Server(data_dir, database_url, concurrency)
    try:
        server.start()
        deadline = time.monotonic() + args.max_seconds
        while receiver.count.value < args.replies and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # let the last outcomes be recorded
    finally:
        server.stop()
    got = receiver.count.value
    span = receiver.last.value - receiver.first.value
    rate = (got - 1) / span if got > 1 and span > 0 else 0.0
    left = pending(database)
    return [
        f"{receiver.latency * 1000:.0f}",
        str(args.replies),
        str(args.accounts),
        str(concurrency),
        f"{rate:,.0f}",
        f"{intake:,.0f}",
        str(got),
        str(left),
    ]


@contextlib.contextmanager
def scratch_postgres(url: str) -> Iterator[str]:
    name = f"smsgate_pushbench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(
        url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.engine.make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def run(args: argparse.Namespace) -> list[list[str]]:
    rows = []
    data_dir = Path(tempfile.mkdtemp(prefix="smsgate-pushbench-"))
    try:
        with contextlib.ExitStack() as stack:
            db = (
                stack.enter_context(scratch_postgres(args.database_url))
                if args.database_url
                else None
            )
            database = Database.open(
                Settings(data_dir=data_dir, database_url=db, push_allowed_targets=["127.0.0.1"])
            )
            stack.callback(database.close)
            for latency_ms in args.latency_ms:
                receiver = Receiver(latency_ms / 1000)
                receiver.start()
                stack.callback(receiver.stop)
                codes = setup_accounts(database, receiver, args.accounts)
                for concurrency in args.concurrency:
                    row = scenario(args, data_dir, db, database, receiver, codes, concurrency)
                    rows.append(row)
                    print(" | ".join(row), file=sys.stderr)
    finally:
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
        else:
            print(f"kept {data_dir}", file=sys.stderr)
    return rows


def table(rows: list[list[str]]) -> str:
    head = [
        "receiver latency ms",
        "replies",
        "accounts",
        "push concurrency",
        "pushes/s",
        "intake replies/s",
        "received",
        "not succeeded",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replies", type=int, default=3000, help="replies per scenario")
    parser.add_argument("--accounts", type=int, default=16)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32, 64])
    parser.add_argument(
        "--latency-ms",
        type=float,
        nargs="+",
        default=[0, 50],
        help="how long the receiver takes to answer (0: at once)",
    )
    parser.add_argument(
        "--database-url",
        help="PostgreSQL server URL; a scratch database is created there and dropped afterwards",
    )
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument("--keep", action="store_true", help="keep the temp data dir and logs")
    args = parser.parse_args(argv)
    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(f"push benchmark on {backend}, {os.cpu_count()} CPUs")
    print(table(run(args)))


if __name__ == "__main__":
    main()
