"""HTTP benchmark of smsgate, measured with wrk: `make bench`.

In one run, for each HTTP server stack smsgate can serve with (SMSGATE_SERVER = uvicorn or
granian), it measures:

  hello                 a raw ASGI app answering `0` (bench/hello.py) on that server's own
                        CLI: what the server alone costs, the baseline of the ratio column
  sms-single            /sms, one fresh number and a distinct content per request,
                        `smsgate serve` as by default (dispatcher and simulator on)
  sms-single-no-worker  the same on `smsgate serve --no-worker`: accepting alone
  sms-99                /sms with 99 fresh numbers per request (msg/s = accepted x 99)
  query                 /query (balance) with SMSGATE_QUERY_INTERVAL_SECONDS=0
  e2e                   99-number requests for --e2e-seconds while the backlog (messages not
                        in a final state) is read from the database every few seconds:
                        does delivery through the simulator (0.05 s delay) keep up?

Each smsgate scenario gets a fresh server process on a fresh database (a temp SQLite data
dir, or a scratch database created on --database-url's server and dropped afterwards), one
account with a huge balance, the signature 【smsgate】 and the frequency caps lifted. Every
server is warmed up with one request (the first login verifies an argon2 hash), then driven
with `wrk -t1 -cCONNECTIONS -dDURATION --latency`; the Lua scripts in bench/wrk/ count any
answer that is not the success text as an error. The peak RSS of the server and its workers
is sampled from /proc during the load.

It prints a Markdown table (and writes it into docs/benchmarks.md, between markers):

  scenario | server | req/s | msg/s | p50 ms | p99 ms | errors | peak RSS MB | ratio to hello

where ratio to hello is req/s divided by the hello req/s of the same server stack.

wrk must be installed (Debian package `wrk`; installed with apt-get when running as root).
The client shares the machine with the server: run it on an otherwise idle machine.

examples:
  python bench/http_bench.py                                  # everything, ~5 minutes
  python bench/http_bench.py --duration 2 --e2e-seconds 5     # a quick smoke run
  python bench/http_bench.py --only hello,sms-single --server granian
  python bench/http_bench.py --database-url postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime as dt
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness import (
    BENCH_DIR,
    Backlog,
    Load,
    Process,
    RssSampler,
    WrkResult,
    backlog,
    ensure_wrk,
    free_port,
    http_get,
    run_wrk,
    scratch_postgres,
)
from report import E2E, Row, report, write_doc

REPO = BENCH_DIR.parent
SERVERS = ("uvicorn", "granian")
USER = "bench"
PASSWORD = "bench-password-1"
KEY = hashlib.md5(PASSWORD.encode()).hexdigest()
BALANCE = 10**12
SMOKE_SECONDS = 10  # runs shorter than this are labelled smoke runs in the report
SMSGATE_ENV = {
    "SMSGATE_FREQ_PER_MINUTE": "1000000000",
    "SMSGATE_FREQ_PER_HOUR": "1000000000",
    "SMSGATE_FREQ_PER_DAY": "1000000000",
    "SMSGATE_FREQ_SAME_CONTENT_SECONDS": "0",
    "SMSGATE_SIMULATOR_DELAY_SECONDS": "0.05",
}


@dataclass(frozen=True)
class Scenario:
    name: str
    label: str
    script: str  # in bench/wrk/
    numbers: int = 0  # per /sms request
    serve_args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    e2e: bool = False


HELLO = Scenario("hello", "hello (raw ASGI)", "hello.lua")
E2E_CONNECTIONS = 32  # for a paced end-to-end run (--e2e-rate)
SCENARIOS = (
    HELLO,
    Scenario("sms-single", "sms single", "sms.lua", numbers=1),
    Scenario(
        "sms-single-no-worker",
        "sms single, --no-worker",
        "sms.lua",
        numbers=1,
        serve_args=("--no-worker",),
    ),
    Scenario("sms-99", "sms 99 numbers", "sms.lua", numbers=99),
    Scenario("query", "query", "query.lua", env=(("SMSGATE_QUERY_INTERVAL_SECONDS", "0"),)),
    Scenario("e2e", "end-to-end, 99 numbers", "sms.lua", numbers=99, e2e=True),
)


@dataclass(frozen=True)
class Run:
    """What every scenario of one run shares."""

    load: Load
    e2e_seconds: float
    e2e_rate: float  # messages a second offered in the end-to-end scenario (0: all it takes)
    database_url: str | None
    work: Path  # logs and data dirs
    keep: bool


# -- hello --------------------------------------------------------------------------------


def hello_command(server: str, port: int) -> list[str]:
    """The hello app on ``server``'s own CLI, set up as smsgate sets that server up."""
    common = ["--host", "127.0.0.1", "--port", str(port), "hello:app"]
    if server == "uvicorn":
        flags = ["--loop", "uvloop", "--http", "httptools", "--no-access-log"]
        return [sys.executable, "-m", "uvicorn", *flags, "--log-level", "warning", *common]
    flags = ["--interface", "asgi", "--loop", "uvloop", "--no-log", "--backlog", "2048"]
    return [sys.executable, "-m", "granian", *flags, "--working-dir", str(BENCH_DIR), *common]


def run_hello(run: Run, server: str) -> Row:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSGATE_")}
    log = run.work / f"hello-{server}.log"
    proc = Process(hello_command(server, port), env, log, cwd=BENCH_DIR)
    url = f"http://127.0.0.1:{port}/"
    proc.start(url)
    try:
        with RssSampler(_pid(proc)) as rss:
            result = run_wrk(run.load, url, HELLO.script, [], run.work / "wrk.log")
    finally:
        proc.stop()
    return Row(HELLO.name, HELLO.label, server, 0, result, rss.peak)


def _pid(proc: Process) -> int:
    assert proc.proc is not None
    return proc.proc.pid


# -- smsgate ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gate:
    data_dir: Path
    database_url: str | None
    env: dict[str, str]


def smsgate_cli(gate: Gate, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "smsgate", *args],
        env=gate.env,
        cwd=gate.data_dir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"smsgate {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


@contextlib.contextmanager
def fresh_gate(run: Run, scenario: Scenario, server: str) -> Iterator[Gate]:
    """A fresh database with the bench account, its signature and the caps lifted."""
    data_dir = Path(tempfile.mkdtemp(prefix=f"{scenario.name}-{server}-", dir=run.work))
    with contextlib.ExitStack() as stack:
        db = None
        if run.database_url:
            db = stack.enter_context(scratch_postgres(run.database_url, keep=run.keep))
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMSGATE_")}
        # An smsgate without the `server` setting ignores SMSGATE_SERVER (pydantic-settings
        # ignores unknown prefixed variables); main() then runs it under one label only.
        env.update(SMSGATE_ENV)
        env.update(scenario.env)
        env["SMSGATE_SERVER"] = server
        env.update(SMSGATE_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
        if db:
            env["SMSGATE_DATABASE_URL"] = db
        gate = Gate(data_dir, db, env)
        smsgate_cli(gate, "migrate")
        smsgate_cli(
            gate, "account", "create", USER, "--password", PASSWORD, "--balance", str(BALANCE)
        )
        smsgate_cli(gate, "signature", "add", USER, "smsgate")
        yield gate


def warm_up(url: str) -> None:
    """The first login verifies the password hash (argon2); later ones hit the cache."""
    query = urllib.parse.urlencode(
        {"u": USER, "p": KEY, "m": "13800000000", "c": "【smsgate】warm-up"}
    )
    status, body = http_get(f"{url}/sms?{query}")
    if body != "0":
        raise SystemExit(f"warm-up request answered {status} {body!r}")


def run_smsgate(run: Run, scenario: Scenario, server: str) -> Row:
    with fresh_gate(run, scenario, server) as gate:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "smsgate", "serve", "--host", "127.0.0.1"]
        cmd += ["--port", str(port), *scenario.serve_args]
        log = run.work / f"{gate.data_dir.name}.log"
        proc = Process(cmd, gate.env, log, cwd=gate.data_dir)
        proc.start(f"{url}/healthz")
        try:
            warm_up(url)
            with RssSampler(_pid(proc)) as rss:
                result, e2e = drive(run, scenario, gate, url)
        finally:
            proc.stop()
    return Row(scenario.name, scenario.label, server, scenario.numbers, result, rss.peak, e2e)


def drive(run: Run, scenario: Scenario, gate: Gate, url: str) -> tuple[WrkResult, E2E | None]:
    args = [USER, KEY, str(scenario.numbers)] if scenario.numbers else [USER, KEY]
    if not scenario.e2e:
        return run_wrk(run.load, url, scenario.script, args, run.work / "wrk.log"), None
    load = Load(run.load.threads, run.load.connections, run.e2e_seconds, run.load.timeout)
    if run.e2e_rate > 0:
        # A steady offered load, not a flood: each of E2E_CONNECTIONS connections waits
        # between requests so that together they offer about e2e_rate messages a second
        # (a little less: each request's own latency adds to its connection's pause; the
        # table shows the rate that was accepted).
        load = Load(run.load.threads, E2E_CONNECTIONS, run.e2e_seconds, run.load.timeout)
        pause_ms = E2E_CONNECTIONS * 1000 * scenario.numbers / run.e2e_rate
        args = [*args, f"{pause_ms:.1f}"]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        samples = [backlog(gate.database_url, gate.data_dir, 0.0)]
        started = time.monotonic()
        wrk = pool.submit(run_wrk, load, url, scenario.script, args, run.work / "wrk.log")
        samples += sample_backlog(gate, wrk, started, interval=sample_interval(run.e2e_seconds))
        result = wrk.result()
    accepted = result.accepted * scenario.numbers / result.duration
    return result, E2E(samples, accepted)


def sample_interval(seconds: float) -> float:
    return min(5.0, max(1.0, seconds / 6))


def sample_backlog(
    gate: Gate, wrk: concurrent.futures.Future[WrkResult], started: float, interval: float
) -> list[Backlog]:
    samples = []
    while True:
        with contextlib.suppress(concurrent.futures.TimeoutError):
            wrk.result(timeout=interval)
        at = time.monotonic() - started
        samples.append(backlog(gate.database_url, gate.data_dir, at))
        if wrk.done():
            return samples


# -- the run ------------------------------------------------------------------------------


def server_setting_supported() -> bool:
    from smsgate.settings import Settings

    return "server" in Settings.model_fields


def plan(args: argparse.Namespace) -> tuple[list[tuple[Scenario, str]], list[str]]:
    """(scenario, server) pairs in run order, and notes on what is left out."""
    servers = SERVERS if args.server == "both" else (args.server,)
    chosen = [s for s in SCENARIOS if args.only is None or s.name in args.only]
    notes = []
    smsgate_servers = servers
    if not server_setting_supported():
        smsgate_servers = tuple(s for s in servers if s == "uvicorn")
        notes.append(
            "this smsgate has no SMSGATE_SERVER setting (it serves with uvicorn only): "
            "smsgate rows are measured on uvicorn only"
        )
    pairs = [
        (scenario, server)
        for scenario in chosen
        for server in (servers if scenario is HELLO else smsgate_servers)
    ]
    return pairs, notes


def run_one(run: Run, scenario: Scenario, server: str) -> Row:
    print(f"== {scenario.name} on {server}", file=sys.stderr, flush=True)
    row = run_hello(run, server) if scenario is HELLO else run_smsgate(run, scenario, server)
    r = row.result
    print(
        f"   {row.req_s:,.0f} req/s, p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms, "
        f"{r.errors} errors, peak RSS {row.peak_rss / 2**20:.0f} MB",
        file=sys.stderr,
        flush=True,
    )
    return row


def intro(args: argparse.Namespace, load_before: float) -> list[str]:
    backend = "PostgreSQL" if args.database_url else "SQLite"
    revision = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    pace = (
        f", offered at {args.e2e_rate:,.0f} msg/s over {E2E_CONNECTIONS} connections"
        if args.e2e_rate > 0
        else ", as fast as it goes"
    )
    e2e = f"; end-to-end for {args.e2e_seconds:g} s{pace}" if runs_e2e(args) else ""
    smoke = ["- **a short smoke run, not a measurement**"] if is_smoke(args) else []
    return [
        *smoke,
        f"- {when}, smsgate {revision or '?'}, {backend}, {os.cpu_count()} CPUs "
        f"({platform.machine()}), Python {platform.python_version()}, "
        f"load average {load_before:.2f} before the run",
        f"- `wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s --latency "
        f"--timeout 10s`{e2e}; wrk on the same machine",
    ]


def runs_e2e(args: argparse.Namespace) -> bool:
    return args.only is None or "e2e" in args.only


def is_smoke(args: argparse.Namespace) -> bool:
    return args.duration < SMOKE_SECONDS or (runs_e2e(args) and args.e2e_seconds < SMOKE_SECONDS)


def scenario_names(text: str) -> set[str]:
    names = {n.strip() for n in text.split(",") if n.strip()}
    unknown = names - {s.name for s in SCENARIOS}
    if unknown:
        known = ", ".join(s.name for s in SCENARIOS)
        raise argparse.ArgumentTypeError(f"unknown {', '.join(sorted(unknown))}; known: {known}")
    return names


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n", 1)[1].split("examples:")[0],
        epilog="examples:" + __doc__.split("examples:")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--server",
        choices=[*SERVERS, "both"],
        default="both",
        help="HTTP server stack(s) to measure (default: both)",
    )
    p.add_argument(
        "--only",
        type=scenario_names,
        metavar="SCENARIO[,..]",
        help="run these scenarios only: " + ", ".join(s.name for s in SCENARIOS),
    )
    p.add_argument(
        "--duration", type=float, default=15.0, help="seconds of load per scenario (default 15)"
    )
    p.add_argument(
        "--e2e-seconds",
        type=float,
        default=60.0,
        help="seconds of load for the end-to-end scenario (default 60)",
    )
    p.add_argument(
        "--e2e-rate",
        type=float,
        default=6000.0,
        help="messages a second the end-to-end scenario offers, paced over "
        f"{E2E_CONNECTIONS} connections (default 6000: each request's latency lowers the "
        "accepted rate a little, to about 5000 here; the table shows it); 0 floods it",
    )
    p.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    p.add_argument(
        "--database-url",
        metavar="postgresql://USER@HOST:PORT/DB",
        help="measure on PostgreSQL: a scratch database is created on this server "
        "for each scenario and dropped afterwards (default: SQLite in a temp dir)",
    )
    p.add_argument(
        "--keep",
        action="store_true",
        help="keep the data dirs, server logs, wrk output and scratch databases",
    )
    p.add_argument(
        "--output",
        type=Path,
        default=REPO / "docs" / "benchmarks.md",
        help="the Markdown file whose table section is replaced (default: docs/benchmarks.md)",
    )
    p.add_argument("--no-write", action="store_true", help="print the table only")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    ensure_wrk()
    pairs, notes = plan(args)
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="smsgate-bench-"))
    run = Run(
        Load(args.threads, args.connections, args.duration),
        args.e2e_seconds,
        args.e2e_rate,
        args.database_url,
        work,
        args.keep,
    )
    try:
        rows = [run_one(run, scenario, server) for scenario, server in pairs]
    finally:
        if args.keep:
            print(f"kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    hello = {row.server: row.req_s for row in rows if row.scenario == HELLO.name}
    text = report(intro(args, load_before), rows, hello, notes)
    print(text)
    if not args.no_write:
        write_doc(args.output, text)
        print(f"written to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
