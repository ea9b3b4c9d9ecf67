"""The moving parts of http_bench.py: server processes, a scratch PostgreSQL database,
wrk runs, RSS sampling from /proc, and the message backlog read from the database."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
WRK_DIR = BENCH_DIR / "wrk"
READY_TIMEOUT = 30.0
FINAL_STATES = ("delivered", "undelivered", "failed", "expired", "unknown")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 30.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, answer.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


# -- wrk ----------------------------------------------------------------------------------


def ensure_wrk() -> str:
    """The wrk binary; installed with apt-get when missing and running as root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit(
            "wrk is not installed. Install the Debian/Ubuntu package `wrk` "
            "(sudo apt-get install wrk), or build it from https://github.com/wg/wrk, "
            "and put it on PATH."
        )
    print("installing wrk (apt-get install -y wrk)", file=sys.stderr)
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(install, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], check=True)
        subprocess.run(install, check=True)
    return shutil.which("wrk") or "wrk"


@dataclass(frozen=True)
class WrkResult:
    requests: int  # every answer
    duration: float  # seconds
    p50_ms: float
    p99_ms: float
    socket_errors: int  # no answer: connect, read, write errors, timeouts
    wrong: int  # answered, but not the success text
    sample: str  # the first wrong answer

    @property
    def accepted(self) -> int:
        return self.requests - self.wrong

    @property
    def errors(self) -> int:
        return self.wrong + self.socket_errors


@dataclass(frozen=True)
class Load:
    threads: int
    connections: int
    seconds: float
    timeout: str = "10s"


def run_wrk(load: Load, url: str, script: str, args: list[str], log: Path) -> WrkResult:
    cmd = [
        ensure_wrk(),
        f"-t{load.threads}",
        f"-c{load.connections}",
        f"-d{load.seconds:g}s",
        f"--timeout={load.timeout}",
        "--latency",
        "-s",
        str(WRK_DIR / script),
        url,
        "--",
        *args,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    with log.open("a") as out:
        out.write(f"$ {shlex.join(cmd)}\n{done.stdout}{done.stderr}\n")
    if done.returncode != 0 or "WRK_RESULT" not in done.stdout:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return parse_wrk(done.stdout)


def parse_wrk(output: str) -> WrkResult:
    line = re.search(r"^WRK_RESULT (.*)$", output, re.M)
    sample = re.search(r"^WRK_SAMPLE (.*)$", output, re.M)
    assert line is not None
    fields = dict(item.split("=", 1) for item in line.group(1).split())
    return WrkResult(
        requests=int(fields["requests"]),
        duration=int(fields["duration_us"]) / 1e6,
        p50_ms=float(fields["p50_us"]) / 1000,
        p99_ms=float(fields["p99_us"]) / 1000,
        socket_errors=int(fields["socket_errors"]),
        wrong=int(fields["wrong"]),
        sample=sample.group(1).strip('"') if sample else "",
    )


# -- processes ----------------------------------------------------------------------------


class Process:
    """A server in its own session (so its workers are found and stopped with it)."""

    def __init__(self, cmd: list[str], env: dict[str, str], log: Path, cwd: Path) -> None:
        self.cmd, self.env, self.log, self.cwd = cmd, env, log, cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, ready_url: str) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.cmd,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited early:\n{self.log.read_text(errors='replace')}")
            with contextlib.suppress(OSError):
                if http_get(ready_url, timeout=1)[0] == 200:
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


def session_rss_bytes(sid: int) -> int:
    """The summed VmRSS of every process in session ``sid`` (a server and its workers)."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(entry.path, "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[3]) != sid:  # field 6: session
                continue
            for line in Path(entry.path, "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


class RssSampler:
    """Samples a process session's RSS in a thread; ``peak`` is the highest sum seen."""

    def __init__(self, sid: int, interval: float = 0.5) -> None:
        self.sid, self.interval, self.peak = sid, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, session_rss_bytes(self.sid))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# -- databases ----------------------------------------------------------------------------


@contextlib.contextmanager
def scratch_postgres(url: str, keep: bool = False) -> Iterator[str]:
    """A fresh database on the server ``url`` points at, dropped afterwards unless ``keep``."""
    import sqlalchemy as sa

    admin = sa.create_engine(_psycopg(url), isolation_level="AUTOCOMMIT")
    name = f"smsgate_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.engine.make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        if keep:
            print(f"kept database {name}", file=sys.stderr)
        else:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _psycopg(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


STATE_COUNTS = "SELECT state, count(*) FROM messages GROUP BY state"


@dataclass(frozen=True)
class Backlog:
    at: float  # seconds since the start of the load
    pending: int  # accepted or submitted: not in a final state yet
    delivered: int


def read_states(database_url: str | None, data_dir: Path) -> dict[str, int]:
    """Message counts by state, read directly from the database (read-only on SQLite)."""
    if database_url is None:
        import sqlite3

        path = data_dir / "smsgate.db"
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            return dict(conn.execute(STATE_COUNTS).fetchall())
    import sqlalchemy as sa

    engine = sa.create_engine(_psycopg(database_url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return dict(conn.exec_driver_sql(STATE_COUNTS).all())
    finally:
        engine.dispose()


def backlog(database_url: str | None, data_dir: Path, at: float) -> Backlog:
    states = read_states(database_url, data_dir)
    pending = sum(n for state, n in states.items() if state not in FINAL_STATES)
    return Backlog(at, pending, states.get("delivered", 0))
