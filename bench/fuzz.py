"""Hostile-input fuzz of a running smsgate: N random requests, counting 5xx and peak RSS.

A fresh server (SQLite in a temp dir, or --database-url's server) with one account gets
--requests requests (100,000 by default) over raw sockets, --concurrency at a time, drawn
from a seeded mix: SMSBao calls with random bytes in every parameter (control characters,
invalid UTF-8, huge and repeated values), by GET, form POST and multipart; /v1 calls with
out-of-range ids, cursors, dates and NULs; malformed HTTP (bad or lying Content-Length,
bodies cut short, too many or too large headers, absolute-form and over-long targets, odd
methods). Every answer must be a status below 500, or the connection closed by the server
for a request it refused at the HTTP level. The server's log is checked for tracebacks.

It prints a Markdown table and writes it into docs/hardening.md, between markers:

  server | requests | req/s | 2xx | 4xx | 5xx | closed | tracebacks | peak RSS MB

examples:
  python bench/fuzz.py                                 # 100,000 requests on each server
  python bench/fuzz.py --requests 5000 --server uvicorn
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote_from_bytes

from harness import Process, RssSampler, free_port, scratch_postgres

from smsgate import __version__

DOC = Path(__file__).resolve().parents[1] / "docs" / "hardening.md"
BEGIN, END = "<!-- fuzz:begin -->", "<!-- fuzz:end -->"
USER, PASSWORD = "fuzz", "fuzz-password-1"
NAMES = ("u", "p", "m", "c", "g")
PATHS = ("/sms", "/wsms", "/voice", "/query", "/sms/", "/wsms/sms")
V1 = ("/v1/account", "/v1/messages", "/v1/replies")
DATES = ("9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00%2B23:59", "x", "2026-01-01")


class Fuzzer:
    def __init__(self, seed: int, api_key: str) -> None:
        self.rng = random.Random(seed)
        self.key = api_key

    def value(self) -> bytes:
        rng = self.rng
        kind = rng.random()
        if kind < 0.3:
            return rng.randbytes(rng.randint(0, 40))
        if kind < 0.5:
            return "".join(chr(rng.randint(0, 0x3000)) for _ in range(rng.randint(0, 30))).encode(
                "utf-8", "surrogatepass"
            )
        if kind < 0.6:
            return b"a" * rng.choice((500, 5000, 15000))
        if kind < 0.7:
            return rng.choice((b"\x00", b"%00", b"\xff\xfe", b"\r\n", b"%", b"+", b"%2B86138"))
        return rng.choice(
            (USER.encode(), self.key.encode(), b"13800138000", "【短信宝】验证码1234".encode())
        )

    def query(self) -> bytes:
        pairs = [
            (self.rng.choice((*NAMES, "x", "")), self.value())
            for _ in range(self.rng.randint(0, 7))
        ]
        return b"&".join(
            k.encode() + b"=" + quote_from_bytes(v, safe="").encode() for k, v in pairs
        )

    def request(self) -> bytes:
        rng = self.rng
        kind = rng.random()
        if kind < 0.45:
            return self.smsbao()
        if kind < 0.7:
            return self.v1()
        return self.malformed()

    def smsbao(self) -> bytes:
        path = self.rng.choice(PATHS)
        if self.rng.random() < 0.5:
            return _get(f"{path}?".encode() + self.query())
        body = self.query()
        extra = b"Content-Type: application/x-www-form-urlencoded\r\n"
        return _request(b"POST", f"{path}?".encode() + self.query(), body, extra)

    def v1(self) -> bytes:
        rng = self.rng
        target = rng.choice(
            (
                f"/v1/messages/{rng.choice((1, -1, 2**63, 10**30, 0))}",
                f"/v1/replies/{rng.choice((1, 2**64, 10**25))}",
                f"/v1/messages?cursor={rng.choice(('1', '10' * 20, '%C2%B2', '-5'))}",
                f"/v1/messages?batch={rng.choice(('1', '9' * 30, 'x'))}",
                f"/v1/replies?since={rng.choice(DATES)}",
                f"/v1/messages?phone={rng.choice(('%00', '138', '%FF', 'a' * 100))}",
                f"{rng.choice(V1)}?{self.query().decode('latin-1')}",
            )
        )
        auth = rng.choice((f"Bearer {self.key}", "Bearer x", "Basic eA==", ""))
        extra = f"Authorization: {auth}\r\n".encode() if auth else b""
        if rng.random() < 0.15:
            body = rng.choice((b'{"phone": "138", "content": "\\u0000"}', b"{", rng.randbytes(50)))
            return _request(
                b"POST",
                b"/v1/simulator/replies",
                body,
                extra + b"Content-Type: application/json\r\n",
            )
        return _request(b"GET", target.encode(), b"", extra)

    def malformed(self) -> bytes:
        rng = self.rng
        case = rng.randint(0, 7)
        if case == 0:  # a lying Content-Length: declared more than sent
            return b"POST /sms HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nu=a"
        if case == 1:
            return b"POST /sms HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"
        if case == 2:
            headers = b"".join(b"X-%d: 1\r\n" % i for i in range(rng.choice((50, 150, 500))))
            return b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + headers + b"Connection: close\r\n\r\n"
        if case == 3:
            return (
                b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "
                + b"a" * rng.choice((10_000, 100_000))
                + b"\r\nConnection: close\r\n\r\n"
            )
        if case == 4:
            return _get(b"http://api.smsbao.com/sms?" + self.query())
        if case == 5:
            return _get(b"/sms?c=" + b"a" * rng.choice((16_000, 70_000)))
        if case == 6:
            method = rng.choice((b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"TRACE", b"BREW"))
            return _request(method, rng.choice(PATHS + V1).encode(), b"", b"")
        return rng.randbytes(rng.randint(1, 200)) + b"\r\n\r\n"


def _get(target: bytes) -> bytes:
    return _request(b"GET", target, b"", b"")


def _request(method: bytes, target: bytes, body: bytes, extra: bytes) -> bytes:
    length = b"Content-Length: %d\r\n" % len(body) if body or method == b"POST" else b""
    return (
        method
        + b" "
        + target
        + b" HTTP/1.1\r\nHost: x\r\n"
        + extra
        + length
        + b"Connection: close\r\n\r\n"
        + body
    )


STATUS = re.compile(rb"^HTTP/1\.[01] (\d{3})")


async def send(port: int, data: bytes) -> str:
    """'2xx', '4xx', '5xx'..., or 'closed' when the server hung up without an answer."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return "connect-failed"
    try:
        writer.write(data)
        await writer.drain()
        if data.startswith(b"POST /sms HTTP/1.1\r\nHost: x\r\nContent-Length: 1000"):
            writer.close()  # declared a longer body and hung up
            return "hung-up"
        head = await asyncio.wait_for(reader.read(64), timeout=30)
    except (OSError, TimeoutError):
        return "closed"
    finally:
        writer.close()
    found = STATUS.match(head)
    return f"{found.group(1)[:1].decode()}xx" if found else "closed"


async def drive(port: int, fuzzer: Fuzzer, total: int, concurrency: int) -> Counter[str]:
    counts: Counter[str] = Counter()
    queue = iter(range(total))

    async def worker() -> None:
        for _ in queue:
            counts[await send(port, fuzzer.request())] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--server", default="granian,uvicorn", help="comma list")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--no-doc", action="store_true", help="print only")
    args = parser.parse_args()
    rows = []
    for server in args.server.split(","):
        with tempfile.TemporaryDirectory(prefix="smsgate-fuzz-") as tmp:
            if args.database_url:
                with scratch_postgres(args.database_url) as url:
                    rows.append(run(args, server, Path(tmp), url))
            else:
                rows.append(run(args, server, Path(tmp), None))
    table = report(rows, args)
    print(table)
    if not args.no_doc:
        write_doc(table)


def run(args: argparse.Namespace, server: str, work: Path, database_url: str | None) -> list[str]:
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSGATE_")}
    env.update(
        SMSGATE_DATA_DIR=str(work / "data"),
        SMSGATE_SERVER=server,
        SMSGATE_SIMULATOR_DELAY_SECONDS="0.05",
        PYTHONUNBUFFERED="1",
    )
    if database_url:
        env["SMSGATE_DATABASE_URL"] = database_url
    cli = [sys.executable, "-m", "smsgate"]
    made = subprocess.run(
        [*cli, "account", "create", USER, "--password", PASSWORD, "--balance", "100000000"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    api_key = re.search(r"ApiKey: (\w{32})", made.stdout)
    assert api_key, made.stdout
    subprocess.run(
        [*cli, "signature", "add", USER, "短信宝"], env=env, check=True, capture_output=True
    )
    port = free_port()
    log = work / "server.log"
    proc = Process([*cli, "serve", "--port", str(port)], env, log, cwd=work)
    proc.start(f"http://127.0.0.1:{port}/healthz")
    assert proc.proc is not None
    try:
        started = time.monotonic()
        with RssSampler(proc.proc.pid) as rss:
            counts = asyncio.run(
                drive(port, Fuzzer(args.seed, api_key.group(1)), args.requests, args.concurrency)
            )
        seconds = time.monotonic() - started
    finally:
        proc.stop()
    text = log.read_text(errors="replace")
    tracebacks = text.count("Traceback") + text.count('"traceback"') + text.count("unhandled ")
    return [
        server + (" + PostgreSQL" if database_url else ""),
        f"{args.requests:,}",
        f"{args.requests / seconds:,.0f}",
        f"{counts['2xx']:,}",
        f"{counts['4xx']:,}",
        f"{counts['5xx']:,}",
        f"{counts['closed'] + counts['hung-up']:,}",
        str(tracebacks),
        f"{rss.peak / 2**20:.0f}",
    ]


def report(rows: list[list[str]], args: argparse.Namespace) -> str:
    head = [
        "server",
        "requests",
        "req/s",
        "2xx",
        "4xx",
        "5xx",
        "closed",
        "tracebacks",
        "peak RSS MB",
    ]
    lines = [
        f"smsgate {__version__}, seed {args.seed}, {args.concurrency} connections at a time, "
        f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def write_doc(table: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    DOC.write_text(text[:start] + "\n" + table + "\n" + text[end:], encoding="utf-8")


if __name__ == "__main__":
    main()
