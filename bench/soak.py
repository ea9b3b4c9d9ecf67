"""Soak test: `/sms` at half the peak rate for a long time; do RSS, open files and the
queue stay flat?

    python bench/soak.py                       # 30 minutes (measures the peak first)
    python bench/soak.py --minutes 3           # a short try
    python bench/soak.py --rate 1400           # skip the peak measurement
    python bench/soak.py --server uvicorn --database-url postgresql://postgres@127.0.0.1/test

It starts `smsgate serve` on a fresh database (bench account, caps lifted, the simulator
delivering after 50 ms, like http_bench.py), measures the peak with a `--peak-seconds` flood
of single-number `/sms` (wrk, 64 connections), then offers half of it, paced over 32
connections, for `--minutes`. Every `--every` seconds it samples the server's summed RSS and
open files (every process of its session, from /proc), the queue depth, pending pushes and
the frequency history's memory (from `/metrics`) and the messages not yet final (from the
database). The history remembers every number sent to for a day, so it grows with traffic by
design; RSS less the history is what must stay flat. The table goes to docs/soak.md between
its markers and to stdout. Flat means: the second half's samples grow by less than
`--flat-share` of the first half's average.

Run it on a quiet machine: wrk shares it with the server.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime as dt
import os
import platform
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from harness import Load, Process, WrkResult, backlog, free_port, http_get, run_wrk
from http_bench import KEY, REPO, SCENARIOS, USER, Run, fresh_gate, warm_up
from report import markdown

SMS = next(s for s in SCENARIOS if s.name == "sms-single")
PEAK_LOAD = Load(threads=1, connections=64, seconds=10)
PACED_CONNECTIONS = 32
DOC = REPO / "docs" / "soak.md"
BEGIN, END = "<!-- soak:begin (written by bench/soak.py) -->", "<!-- soak:end -->"
METRIC = re.compile(
    r"^(smsgate_queue_depth|smsgate_push_pending|smsgate_frequency_history_bytes) ([0-9.e+]+)$",
    re.M,
)


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the soak started
    rss_mb: float
    open_files: int
    queue_depth: int  # outbox rows (waiting for the carrier)
    not_final: int  # messages accepted or submitted
    push_pending: int
    history_mb: float  # the frequency history's memory (/metrics), which grows by design

    @property
    def rss_less_history_mb(self) -> float:
        """What the server holds besides the day of history: this is what must stay flat."""
        return self.rss_mb - self.history_mb


def session_pids(sid: int) -> list[int]:
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = Path(entry.path, "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[3]) == sid:
                    pids.append(int(entry.name))
    return pids


def rss_and_files(sid: int) -> tuple[float, int]:
    rss, files = 0, 0
    for pid in session_pids(sid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1]) * 1024
            files += len(os.listdir(f"/proc/{pid}/fd"))
    return rss / 2**20, files


def scrape(url: str) -> dict[str, int]:
    status, text = http_get(f"{url}/metrics", timeout=10)
    if status != 200:
        return {}
    return {name: int(float(value)) for name, value in METRIC.findall(text)}


def sample(url: str, sid: int, gate_db: str | None, data_dir: Path, at: float) -> Sample:
    rss, files = rss_and_files(sid)
    metrics = scrape(url)
    pending = backlog(gate_db, data_dir, at).pending
    return Sample(
        at,
        rss,
        files,
        metrics.get("smsgate_queue_depth", -1),
        pending,
        metrics.get("smsgate_push_pending", -1),
        metrics.get("smsgate_frequency_history_bytes", 0) / 2**20,
    )


def grows(samples: list[Sample], field: str, share: float, floor: float = 1.0) -> str:
    """Flat or growing: the second half's mean against the first's, relative to the first
    (at least ``floor``: a queue that moves between 5 and 10 with 700 req/s flowing is flat)."""
    half = len(samples) // 2
    if half < 2:
        return "too short to say"
    first = [getattr(s, field) for s in samples[:half]]
    second = [getattr(s, field) for s in samples[half:]]
    mean = sum(first) / len(first)
    change = (sum(second) / len(second) - mean) / max(mean, floor)
    verdict = "flat" if change < share else "GROWS"
    return f"{verdict} ({change:+.1%})"


def table(samples: list[Sample]) -> str:
    header = ["at (s)", "RSS MB", "history MB", "RSS less history MB", "open files",
              "queue depth", "not final", "push pending"]  # fmt: skip
    rows = [
        [
            f"{s.at:,.0f}",
            f"{s.rss_mb:,.1f}",
            f"{s.history_mb:,.1f}",
            f"{s.rss_less_history_mb:,.1f}",
            f"{s.open_files:,}",
            f"{s.queue_depth:,}",
            f"{s.not_final:,}",
            f"{s.push_pending:,}",
        ]
        for s in samples
    ]
    return markdown(header, rows, left=0)


def report(args: argparse.Namespace, rate: float, peak: WrkResult | None, samples: list[Sample],
           paced: WrkResult) -> str:  # fmt: skip
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs"
    peak_line = (
        f"peak {peak.accepted / peak.duration:,.0f} req/s (flood, {PEAK_LOAD.connections} "
        f"connections, {PEAK_LOAD.seconds:g} s)"
        if peak
        else "peak not measured (--rate given)"
    )
    minutes = paced.duration / 60
    lines = [
        f"Run {when} on {machine}, `{args.server}`, "
        f"{'PostgreSQL' if args.database_url else 'SQLite'}; {peak_line}; "
        f"offered {rate:,.0f} req/s for {minutes:.1f} min over {PACED_CONNECTIONS} connections: "
        f"accepted {paced.accepted / paced.duration:,.0f} req/s, p50 {paced.p50_ms:.1f} ms, "
        f"p99 {paced.p99_ms:.1f} ms, {paced.errors} errors.",
        "",
        table(samples),
        "",
        "Second half against the first (queues relative to at least one second of the "
        "offered rate): "
        + ", ".join(
            f"{name} {grows(samples, field, args.flat_share, floor)}"
            for name, field, floor in (
                ("RSS", "rss_mb", 1.0),
                ("RSS less the frequency history", "rss_less_history_mb", 1.0),
                ("open files", "open_files", 1.0),
                ("queue depth", "queue_depth", rate),
                ("not final", "not_final", rate),
            )
        )
        + ".",
        "",
    ]
    return "\n".join(lines)


def soak(args: argparse.Namespace, work: Path) -> str:
    run = Run(PEAK_LOAD, 0, 0, args.database_url, work, keep=False)
    with fresh_gate(run, SMS, args.server) as gate:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "smsgate", "serve", "--host", "127.0.0.1"]
        proc = Process([*cmd, "--port", str(port)], gate.env, work / "server.log", gate.data_dir)
        proc.start(f"{url}/healthz")
        try:
            warm_up(url)
            assert proc.proc is not None
            sid = proc.proc.pid
            peak = None
            rate = args.rate
            if not rate:
                peak = run_wrk(PEAK_LOAD, url, "sms.lua", [USER, KEY, "1"], work / "wrk.log")
                rate = peak.accepted / peak.duration / 2
                time.sleep(5)  # let the flood's backlog drain before the soak starts
            pause_ms = PACED_CONNECTIONS * 1000 / rate
            load = Load(1, PACED_CONNECTIONS, args.minutes * 60)
            wrk_args = [USER, KEY, "1", f"{pause_ms:.1f}"]
            samples: list[Sample] = []
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                started = time.monotonic()
                done = pool.submit(run_wrk, load, url, "sms.lua", wrk_args, work / "wrk.log")
                while not done.done():
                    at = time.monotonic() - started
                    samples.append(sample(url, sid, gate.database_url, gate.data_dir, at))
                    print(samples[-1], file=sys.stderr)
                    with contextlib.suppress(concurrent.futures.TimeoutError):
                        done.result(timeout=args.every)
                paced = done.result()
            at = time.monotonic() - started
            samples.append(sample(url, sid, gate.database_url, gate.data_dir, at))
        finally:
            proc.stop()
    return report(args, rate, peak, samples, paced)


def write_doc(section: str) -> None:
    """Replace the text between the markers of docs/soak.md; the prose around them stays."""
    text = DOC.read_text() if DOC.exists() else f"# Soak\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    DOC.write_text(f"{head}{BEGIN}\n{section}{END}{rest.split(END, 1)[1]}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--minutes", type=float, default=30.0, help="soak length (default 30)")
    p.add_argument("--rate", type=float, default=0.0, help="req/s to offer (default: peak / 2)")
    p.add_argument("--every", type=float, default=0.0, help="seconds between samples")
    p.add_argument("--server", choices=("granian", "uvicorn"), default="granian")
    p.add_argument("--database-url", default=None, help="PostgreSQL (a scratch database)")
    p.add_argument("--flat-share", type=float, default=0.1, help="growth still called flat")
    p.add_argument("--no-write", action="store_true", help=f"do not update {DOC.name}")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if not args.every:
        args.every = max(5.0, args.minutes * 60 / 30)  # about 30 samples
    with tempfile.TemporaryDirectory(prefix="smsgate-soak-") as tmp:
        section = soak(args, Path(tmp))
    print(section)
    if not args.no_write:
        write_doc(section)
        print(f"written to {DOC}", file=sys.stderr)


if __name__ == "__main__":
    main()
