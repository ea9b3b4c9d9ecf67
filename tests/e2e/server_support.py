"""The real `smsgate serve` process and the real CLI, for the end-to-end tests.

A :class:`ServerProcess` has ``.url``, ``.port``, ``.env``, ``.data_dir``, ``.database_url``,
``.cli(*args, check=True)``, ``.start()``, ``.stop()``, ``.kill()``, ``.logs()``,
``.create_account(...)``, ``.create_accounts(n, ...)``, ``.show(name)``, ``.ledger(name)``,
``.wait_synced()`` and ``.sibling(env)`` (another server on the same database).
The fixtures that make them are in conftest.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest
import sqlalchemy as sa

from tests.receivers import ALLOW_RECEIVERS
from tests.support.databases import psycopg_url
from tests.support.redis_state import redis_env
from tests.support.waiting import wait_for

READY_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
CLI_TIMEOUT = 60.0
CLI_PARALLEL = max(2, min(4, os.cpu_count() or 2))  # each CLI process is CPU-bound startup
SEEN_WITHIN = 2.0  # design.md: a running server sees an admin change within 2 seconds
RELOADED_RE = re.compile(r"snapshot reloaded \(rev (\d+)\)")
API_KEY_RE = re.compile(r"^ApiKey: ([0-9A-Za-z]{32})$", re.MULTILINE)
# What the parent environment may not leak into the processes under test.
SCRUBBED_ENV = ("COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE", "PYTHONWARNINGS")
PROXY_ENV = tuple(
    name
    for base in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    for name in (base, base.upper())
)


def md5(text: str) -> str:
    """The value SMSBao clients send as ``p``: MD5 hex (lower case) of the password."""
    return hashlib.md5(text.encode("utf-8")).hexdigest()


class Account(NamedTuple):
    """An account created through the CLI; unpacks as (username, password, api_key)."""

    username: str
    password: str
    api_key: str

    @property
    def md5(self) -> str:
        return md5(self.password)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def parse_api_key(output: str) -> str:
    match = API_KEY_RE.search(output)
    assert match, f"no 'ApiKey: <key>' line in:\n{output}"
    return match.group(1)


_names = itertools.count(1)


def unique_name(prefix: str = "acct") -> str:
    return f"{prefix}{next(_names)}_{uuid.uuid4().hex[:6]}"


class ServerProcess:
    """One `smsgate serve` process (started on demand) and the CLI on the same database."""

    def __init__(
        self,
        data_dir: Path,
        database_url: str | None,
        extra_env: Mapping[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMSGATE_")}
        for name in SCRUBBED_ENV + PROXY_ENV:
            env.pop(name, None)
        env["PYTHONUNBUFFERED"] = "1"
        env["SMSGATE_DATA_DIR"] = str(data_dir)
        env["SMSGATE_PUSH_ALLOWED_TARGETS"] = ALLOW_RECEIVERS  # receivers run on loopback
        if database_url is not None and not database_url.startswith("sqlite"):
            env["SMSGATE_DATABASE_URL"] = database_url
            env.update(redis_env(database_url))  # the cluster's setup: PostgreSQL + Redis
        env.update(extra_env or {})
        self.env = env
        # The database both the server and the CLI use (SQLite: the file in the data dir).
        self.database_url = (
            env.get("SMSGATE_DATABASE_URL") or f"sqlite:///{data_dir / 'smsgate.db'}"
        )
        self.log_path = data_dir / f"server-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._engine: sa.Engine | None = None
        self._rev_at_start = 0

    # -- the server process -----------------------------------------------------------

    def start(self, timeout: float = READY_TIMEOUT) -> ServerProcess:
        """Start (again) on the same port and database; return once /healthz answers."""
        assert self.proc is None or self.proc.poll() is not None, "server already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"--- start {time.strftime('%H:%M:%S')} ---\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "smsgate", "serve", "--port", str(self.port)],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kill() reaches any workers
            )
        self._wait_ready(timeout)
        # The server loaded its snapshot before it answered /healthz: every admin change
        # up to this revision is in it.
        self._rev_at_start = self.config_rev()
        return self

    def _wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        last_error = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"smsgate serve exited with {self.proc.returncode} before it was ready:\n"
                    + self.logs()
                )
            try:
                response = httpx.get(f"{self.url}/healthz", timeout=1.0, trust_env=False)
                if response.status_code == 200:
                    return
                last_error = f"/healthz answered {response.status_code}: {response.text}"
            except httpx.HTTPError as exc:
                last_error = repr(exc)
            time.sleep(0.05)
        self.kill()
        pytest.fail(
            f"smsgate serve not ready within {timeout:.0f} s ({last_error}):\n" + self.logs()
        )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM and wait (SIGKILL after `timeout`); returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def kill(self) -> int | None:
        """SIGKILL the server (and anything it spawned) and wait."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(STOP_TIMEOUT)
        return self.proc.returncode

    def wait_synced(self, timeout: float = SEEN_WITHIN) -> None:
        """Wait until the running server has loaded every admin change made so far.

        Admin commands bump ``config_rev``; the server logs "snapshot reloaded (rev N)"
        when it picks a change up. Without such a line the wait ends after `timeout`,
        the time within which design.md promises a change is seen.
        """
        if self.running:
            self.wait_loaded(self.config_rev(), timeout)

    def wait_loaded(self, rev: int, timeout: float = SEEN_WITHIN) -> None:
        """Wait until the server has loaded config revision `rev` (see wait_synced)."""
        wait_for(self.loaded_rev, lambda loaded: loaded >= rev, timeout, interval=0.05)

    def loaded_rev(self) -> int:
        """The newest config revision the server has loaded, by its log."""
        logged = [int(rev) for rev in RELOADED_RE.findall(self.logs())]
        return max([self._rev_at_start, *logged])

    def config_rev(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT rev FROM config_rev")).scalar_one())

    def logs(self) -> str:
        """Everything the server printed (stdout and stderr, all starts)."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def close(self) -> None:
        self.stop()
        if self._engine is not None:
            self._engine.dispose()

    def sibling(self, extra_env: Mapping[str, str] | None = None) -> ServerProcess:
        """Another server (not started) on the same database, with its own port and env."""
        return ServerProcess(self.data_dir, self.database_url, extra_env)

    # -- the CLI ------------------------------------------------------------------------

    def cli(
        self,
        *args: str,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        timeout: float = CLI_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """Run `python -m smsgate ARGS` with the server's settings; text output."""
        result = subprocess.run(
            [sys.executable, "-m", "smsgate", *args],
            env={**self.env, **(env or {})},
            input=input,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            pytest.fail(
                f"`smsgate {' '.join(args)}` exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def cli_many(
        self,
        *commands: Sequence[str],
        check: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> list[subprocess.CompletedProcess[str]]:
        """Run several CLI commands, CLI_PARALLEL at a time; results in the given order."""
        with ThreadPoolExecutor(max_workers=CLI_PARALLEL) as executor:
            futures = [executor.submit(self.cli, *cmd, check=False, env=env) for cmd in commands]
            results = [future.result() for future in futures]
        for result in results:
            if check and result.returncode != 0:
                pytest.fail(
                    f"`smsgate {' '.join(result.args[3:])}` exited {result.returncode}\n"
                    f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
                )
        return results

    def create_account(
        self, balance: int = 0, *, username: str | None = None, password: str | None = None
    ) -> Account:
        """`smsgate account create`; returns (username, password, api_key)."""
        return self.create_accounts(1, balance, username=username, password=password)[0]

    def create_accounts(
        self,
        count: int,
        balance: int = 0,
        *,
        username: str | None = None,
        password: str | None = None,
    ) -> list[Account]:
        """Create `count` accounts with concurrent CLI processes (each start costs ~0.7 s).

        When the server runs, returns once it has seen the new accounts.
        """
        assert username is None or count == 1
        specs = [
            (username or unique_name(), password or secrets.token_urlsafe(12)) for _ in range(count)
        ]
        results = self.cli_many(
            *(
                ["account", "create", name, "--password", pw, "--balance", str(balance)]
                for name, pw in specs
            )
        )
        self.wait_synced()
        return [
            Account(name, pw, parse_api_key(result.stdout))
            for (name, pw), result in zip(specs, results, strict=True)
        ]

    def show(self, username: str) -> dict[str, str]:
        """`smsgate account show NAME` as {label: value}."""
        return parse_show(self.cli("account", "show", username).stdout)

    # -- the database, read directly (for checks only) ---------------------------------

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            url = psycopg_url(self.database_url)
            self._engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        return self._engine

    def ledger(self, username: str) -> list[tuple[int, str, str | None]]:
        """The account's ledger rows (delta, kind, ref) in insertion order."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT l.delta, l.kind, l.ref FROM ledger l "
                    "JOIN accounts a ON a.id = l.account_id "
                    "WHERE a.username = :u ORDER BY l.id"
                ),
                {"u": username},
            ).all()
        return [(int(d), k, r) for d, k, r in rows]


def parse_show(output: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in output.splitlines():
        label, _, value = line.partition(" ")
        if label:
            fields[label] = value.strip()
    return fields
