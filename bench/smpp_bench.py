"""SMPP benchmark: submit_sm per second over one bind, to the npm `smpp` SMSC of the e2e tests.

The carrier (`smsgate.carriers.smpp`) is driven directly, the way the dispatcher drives it:
`submit(batch)` calls one after another, each batch of --batch messages. The SMSC
(tests/e2e/smsc/smsc.js, Node.js, one thread) answers every submit_sm at once and, in the
"receipts" rows, sends a delivery receipt for each, which the carrier answers after a
(no-op) sink returned. Short GSM-7 texts, one part each.

    python bench/smpp_bench.py                    # ~1 minute
    python bench/smpp_bench.py --messages 5000    # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.smsc_support import Smsc, install  # noqa: E402

from smsgate.carriers.smpp.carrier import SmppCarrier, SmppConfig  # noqa: E402
from smsgate.carriers.smpp.session import SessionConfig  # noqa: E402
from smsgate.core.messages import DeliveryReport, Kind, Outgoing  # noqa: E402
from smsgate.core.replies import IncomingReply  # noqa: E402


class CountingSink:
    def __init__(self) -> None:
        self.reports = 0

    async def delivery_report(self, report: DeliveryReport) -> None:
        self.reports += 1

    async def incoming(self, reply: IncomingReply) -> None:
        pass


async def run(
    smsc: Smsc, window: int, batch: int, messages: int, receipts: bool
) -> dict[str, float]:
    smsc.configure(receipts=receipts, record=False)
    session = SessionConfig("127.0.0.1", smsc.port, "smsgate", "secret", window=window)
    carrier = SmppCarrier(SmppConfig(session, source_addr="1069"), name="bench")
    sink = CountingSink()
    await carrier.start(sink)
    while carrier.status()["state"] != "bound":
        await asyncio.sleep(0.01)
    ids = iter(range(1, messages + 1))
    started = time.perf_counter()
    taken = 0
    for _ in range(0, messages, batch):
        chunk = [
            Outgoing(i, f"139{i:08d}", f"Your code is {i % 10000:04d}", Kind.SMS, 1)
            for i in (next(ids, None) for _ in range(batch))
            if i is not None
        ]
        taken += sum(r.accepted for r in await carrier.submit(chunk))
    elapsed = time.perf_counter() - started
    if receipts:
        deadline = time.monotonic() + 30
        while sink.reports < taken and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    await carrier.stop()
    return {"taken": taken, "seconds": elapsed, "rate": taken / elapsed, "reports": sink.reports}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    args = parser.parse_args()
    install()
    scenarios = [
        (1, 100, False),
        (32, 100, False),
        (32, 1000, False),
        (32, 100, True),
        (32, 1000, True),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        smsc = Smsc(Path(tmp) / "pdus.jsonl")
        try:
            rows = [
                (w, b, r, asyncio.run(run(smsc, w, b, args.messages, r))) for w, b, r in scenarios
            ]
        finally:
            smsc.close()
    print("| window | batch | receipts | messages | submit_sm/s | receipts answered |")
    print("| -----: | ----: | -------- | -------: | ----------: | ----------------: |")
    for window, batch, receipts, m in rows:
        print(
            f"| {window} | {batch:,} | {'yes' if receipts else 'no'} | {int(m['taken']):,} "
            f"| {m['rate']:,.0f} | {int(m['reports']):,} |"
        )


if __name__ == "__main__":
    main()
