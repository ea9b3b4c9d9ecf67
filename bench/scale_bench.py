"""Scale-out benchmark: accepted /sms requests a second on PostgreSQL (+ Redis) with one and
two API nodes (`smsgate serve --no-worker`), measured with wrk: `python bench/scale_bench.py`.

Cases (each on a fresh scratch PostgreSQL database and a fresh Redis key prefix; one fresh
number and a distinct content per request, frequency caps lifted; no worker runs, so the
figures are the accepting side alone):

  1 node                one API node, counters in Redis
  1 node, in-process    one API node, counters in the process (SMSGATE_REDIS_URL unset)
  2 nodes, 1 account    two API nodes, both sending for the same account (the hot balance)
  2 nodes, 2 accounts   two API nodes, each its own account: does one balance serialise?

Each node gets its own wrk process (-t1, half of --connections each for two nodes); the
accepted rates are summed. Before the HTTP table, the cost of one rate check is measured
in-process: the in-process counters against one Redis script call.

It prints Markdown tables; paste them into docs/benchmarks.md ("Scale-out").

examples:
  python bench/scale_bench.py --database-url postgresql://postgres@127.0.0.1:5432/test \\
      --redis-url redis://127.0.0.1:6379/9
  python bench/scale_bench.py ... --duration 5 --only "1 node;2 nodes, 1 account"
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness import Load, Process, WrkResult, ensure_wrk, free_port, run_wrk, scratch_postgres
from http_bench import KEY, PASSWORD, SMSGATE_ENV, USER, warm_up

BALANCE = 10**12


@dataclass(frozen=True)
class Case:
    label: str
    nodes: int
    accounts: int  # 1: every node sends for the same account; else one per node
    redis: bool = True


CASES = (
    Case("1 node", 1, 1),
    Case("1 node, in-process", 1, 1, redis=False),
    Case("2 nodes, 1 account", 2, 1),
    Case("2 nodes, 2 accounts", 2, 2),
)


def check_cost(redis_url: str, rounds: int = 3000) -> list[tuple[str, float, float]]:
    """(check, in-process us, Redis us) per call of each rate check of the send path."""
    import redis

    from smsgate.core.frequency import Sent
    from smsgate.counters.memory import MemoryCounters, MemoryFrequencyState
    from smsgate.counters.redis import Link, RedisCounters, RedisFrequencyState

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    link = Link(client)
    prefix = f"smsgate-bench:{uuid.uuid4().hex[:8]}:"
    pairs = {
        "memory": (MemoryFrequencyState(), MemoryCounters()),
        "redis": (RedisFrequencyState(link, prefix), RedisCounters(link, prefix)),
    }
    checks = {
        "per-number caps (append)": lambda s, c, n: s.append([f"1:{n}"], Sent(n, "d"), 86400.0),
        "daily cap (count and record)": lambda s, c, n: c.count_and_record(
            ["daily:1"], n - 86400.0, float(n), 86400.0
        ),
        "failed logins (3 keys, read)": lambda s, c, n: c.count_and_record(
            ["u", "s", "n"], n - 300.0, float(n), 1.0, 0
        ),
        "/query slot": lambda s, c, n: c.take_slot(f"query:{n}", float(n), 60.0),
    }
    rows = []
    try:
        for name, check in checks.items():
            cost = {}
            for kind, (state, counters) in pairs.items():
                started = time.perf_counter()
                for n in range(rounds):
                    check(state, counters, 1_000_000 + n)
                cost[kind] = (time.perf_counter() - started) / rounds * 1e6
            rows.append((name, cost["memory"], cost["redis"]))
    finally:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
        client.close()
    return rows


@contextlib.contextmanager
def cluster(args: argparse.Namespace, case: Case, work: Path) -> Iterator[list[tuple[str, str]]]:
    """The case's API nodes, started; yields (URL, account) per node."""
    with scratch_postgres(args.database_url) as database_url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMSGATE_")}
        if env.get("PYTHONPATH"):  # the nodes run in a temp dir: a relative path would miss
            paths = env["PYTHONPATH"].split(os.pathsep)
            env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in paths)
        env.update(SMSGATE_ENV, SMSGATE_DATABASE_URL=database_url, PYTHONUNBUFFERED="1")
        env.update(SMSGATE_DATA_DIR=str(work), SMSGATE_RUN_WORKER="false")
        prefix = f"smsgate-bench:{uuid.uuid4().hex[:8]}:"
        if case.redis:
            env.update(SMSGATE_REDIS_URL=args.redis_url, SMSGATE_REDIS_PREFIX=prefix)
        users = [USER] if case.accounts == 1 else [f"{USER}{i}" for i in range(case.nodes)]
        cli(env, work, "migrate")
        for user in users:
            cli(
                env,
                work,
                "account",
                "create",
                user,
                "--password",
                PASSWORD,
                "--balance",
                str(BALANCE),
            )
            cli(env, work, "signature", "add", user, "smsgate")
        nodes = []
        try:
            for i in range(case.nodes):
                port = free_port()
                cmd = [sys.executable, "-m", "smsgate", "serve", "--no-worker"]
                cmd += ["--host", "127.0.0.1", "--port", str(port)]
                proc = Process(cmd, env, work / f"node{i}.log", cwd=work)
                nodes.append(proc)
                proc.start(f"http://127.0.0.1:{port}/healthz")
                url = f"http://127.0.0.1:{port}"
                user = users[i % len(users)]
                warm_up_as(url, user)
            yield [
                (f"http://127.0.0.1:{p.cmd[-1]}", users[i % len(users)])
                for i, p in enumerate(nodes)
            ]
        finally:
            for proc in nodes:
                proc.stop()
            if case.redis:
                forget(args.redis_url, prefix)


def warm_up_as(url: str, user: str) -> None:
    if user == USER:
        warm_up(url)
        return
    import urllib.parse

    from harness import http_get

    query = urllib.parse.urlencode({"u": user, "p": KEY, "m": "13800000000", "c": "【smsgate】w"})
    status, body = http_get(f"{url}/sms?{query}")
    if body != "0":
        raise SystemExit(f"warm-up for {user} answered {status} {body!r}")


def forget(redis_url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start : start + 1000])
    client.close()


def cli(env: dict[str, str], work: Path, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "smsgate", *args], env=env, cwd=work, capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"smsgate {' '.join(args)} failed:\n{done.stdout}{done.stderr}")


def measure(args: argparse.Namespace, case: Case) -> tuple[float, list[WrkResult]]:
    work = Path(tempfile.mkdtemp(prefix="scale-"))
    with cluster(args, case, work) as nodes:
        load = Load(1, max(1, args.connections // case.nodes), args.duration)
        with concurrent.futures.ThreadPoolExecutor(len(nodes)) as pool:
            runs = [
                pool.submit(
                    run_wrk,
                    load,
                    url,
                    "sms.lua",
                    [user, KEY, "1", "0", str(i)],
                    work / f"wrk{i}.log",
                )
                for i, (url, user) in enumerate(nodes)
            ]
            results = [r.result() for r in runs]
    return sum(r.accepted / r.duration for r in results), results


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n", 1)[1].split("examples:")[0],
        epilog="examples:" + __doc__.split("examples:")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--database-url", required=True, metavar="postgresql://USER@HOST/DB")
    p.add_argument("--redis-url", required=True, metavar="redis://HOST:PORT/N")
    p.add_argument("--duration", type=float, default=15.0, help="seconds of load (default 15)")
    p.add_argument("--connections", type=int, default=64, help="wrk connections in all")
    p.add_argument("--only", help="case labels, separated by semicolons")
    args = p.parse_args()
    ensure_wrk()
    print(f"{os.cpu_count()} CPU(s), load average before: {os.getloadavg()[0]:.2f}\n")
    print("| rate check | in-process us | Redis us (one script call) |")
    print("|---|---:|---:|")
    for name, memory, shared in check_cost(args.redis_url):
        print(f"| {name} | {memory:.1f} | {shared:.1f} |")
    print("\n| case | accepted req/s | per node | p50 ms | p99 ms | errors |")
    print("|---|---:|---:|---:|---:|---:|")
    wanted = {s.strip() for s in args.only.split(";")} if args.only else None
    for case in CASES:
        if wanted is not None and case.label not in wanted:
            continue
        rate, results = measure(args, case)
        per_node = " / ".join(f"{r.accepted / r.duration:.0f}" for r in results)
        p50 = max(r.p50_ms for r in results)
        p99 = max(r.p99_ms for r in results)
        errors = sum(r.errors for r in results)
        print(f"| {case.label} | {rate:.0f} | {per_node} | {p50:.1f} | {p99:.1f} | {errors} |")


if __name__ == "__main__":
    main()
