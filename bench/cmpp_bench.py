"""CMPP server throughput: SUBMITs per second over one connection with a window of 16.

A fresh `smsgate serve --cmpp-port` (SQLite in a temp dir, or --database-url's server;
dispatcher and simulator on, so status reports flow back over the same connection while
submits go out) and one account with a CMPP login. smsgate's own `cmpp` client submits
--messages messages, each to a fresh number with a distinct text, keeping --window SUBMITs
unanswered; every SUBMIT_RESP is written only after the charge and the message are
committed. Prints a Markdown table:

  version | window | messages | seconds | submits/s | p50 ms | p99 ms | refused

examples:
  python bench/cmpp_bench.py                      # 5,000 messages, CMPP 2.0 and 3.0
  python bench/cmpp_bench.py --messages 1000 --versions 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import Process, free_port

from smsgate.carriers.cmpp.client import ClientConfig, CmppCarrier
from smsgate.carriers.cmpp.codec import Version
from smsgate.core.messages import DeliveryReport, Kind, Outgoing
from smsgate.core.replies import IncomingReply

SP_ID, SECRET, SIGNATURE = "300250", "bench-secret", "smsgate"


class Sink:
    """Takes the status reports the server sends back (and forgets them)."""

    def __init__(self) -> None:
        self.reports = 0

    async def delivery_report(self, report: DeliveryReport) -> None:
        self.reports += 1

    async def incoming(self, reply: IncomingReply) -> None:
        pass


def cli(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "-m", "smsgate", *args], env=env, check=True,
                   capture_output=True)  # fmt: skip


def prepare(env: dict[str, str], messages: int) -> None:
    cli(env, "migrate")
    cli(env, "account", "create", "bench", "--password", "bench-pw-1", "--balance",
        str(messages * 4))  # fmt: skip
    cli(env, "signature", "add", "bench", SIGNATURE)
    cli(env, "account", "set", "bench", "--cmpp-sp-id", SP_ID, "--cmpp-secret", SECRET)


async def run(port: int, version: Version, window: int, count: int, start: int) -> list[str]:
    config = ClientConfig("127.0.0.1", port, SP_ID, SECRET, version=version, window=window,
                          response_timeout=30.0)  # fmt: skip
    carrier = CmppCarrier("bench", config)
    await carrier.start(Sink())
    while not carrier.status()["links_up"]:
        await asyncio.sleep(0.05)
    latencies: list[float] = []
    refused = 0
    slots = asyncio.Semaphore(window)  # latency from SUBMIT to SUBMIT_RESP, not queueing

    async def one(i: int) -> None:
        nonlocal refused
        message = Outgoing(start + i, f"139{start + i:08d}", f"【{SIGNATURE}】测试{start + i}",
                           Kind.SMS, 1)  # fmt: skip
        async with slots:
            began = time.perf_counter()
            [result] = await carrier.submit([message])
            latencies.append(time.perf_counter() - began)
        refused += result.carrier_ref is None

    began = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    seconds = time.perf_counter() - began
    await carrier.stop()
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    return [f"{version.value >> 4}.0", str(window), str(count), f"{seconds:.2f}",
            f"{count / seconds:,.0f}", f"{p50:.1f}", f"{p99:.1f}", str(refused)]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--versions", default="2,3", help="2, 3 or 2,3")
    parser.add_argument("--database-url", help="PostgreSQL URL (default: SQLite in a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cmpp-bench-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMSGATE_")}
        env.update(SMSGATE_DATA_DIR=tmp, SMSGATE_SIMULATOR_DELAY_SECONDS="0.05")
        if args.database_url:
            env["SMSGATE_DATABASE_URL"] = args.database_url
        http_port, cmpp_port = free_port(), free_port()
        prepare(env, args.messages * 2)
        server = Process(
            [sys.executable, "-m", "smsgate", "serve", "--port", str(http_port),
             "--cmpp-port", str(cmpp_port)],
            env, Path(tmp) / "server.log", Path(tmp),
        )  # fmt: skip
        server.start(f"http://127.0.0.1:{http_port}/healthz")
        rows = []
        try:
            for n, v in enumerate(args.versions.split(",")):
                version = Version.V3 if v.strip() == "3" else Version.V2
                start = 1 + n * args.messages
                rows.append(asyncio.run(run(cmpp_port, version, args.window, args.messages,
                                            start)))  # fmt: skip
        finally:
            server.stop()
    header = ["version", "window", "messages", "seconds", "submits/s", "p50 ms", "p99 ms",
              "refused"]  # fmt: skip
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
