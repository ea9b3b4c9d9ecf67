"""End-to-end fixtures: the real `smsgate serve` process on a free port, and the real CLI.

Fixtures (all yield or return a :class:`ServerProcess`):

``server``
    Function scoped, started, on ``database_url`` (SQLite and PostgreSQL). Extra settings
    come from the ``server_env`` fixture: override it in a module, or per test with
    ``@pytest.mark.parametrize("server_env", [{"SMSGATE_X": "1"}], indirect=True)``.
``shared_server``
    Module scoped, started, on ``shared_database_url``; extra settings from the module-scoped
    ``shared_server_env`` fixture (override it in the module). Use distinct accounts per test.
``shared_gateway``
    Module scoped, same database and env as a server but *not* started: for CLI-only tests.
``spawn_server``
    Function scoped factory ``spawn_server(env=None, *, database_url=None, started=True)``
    for tests that need several servers (e.g. two nodes on one PostgreSQL database).

Backends: ``shared_database_url`` runs on SQLite and PostgreSQL (PostgreSQL is skipped unless
SMSGATE_TEST_DATABASE_URL is set). Restrict a module or test with
``pytest.mark.backends("sqlite")``. The function-scoped ``database_url`` (tests/conftest.py)
is restricted with ``@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)``.

A ServerProcess has ``.url``, ``.port``, ``.env``, ``.data_dir``, ``.database_url``,
``.cli(*args, check=True)``, ``.start()``, ``.stop()``, ``.kill()``, ``.logs()``,
``.create_account(...)``, ``.create_accounts(n, ...)``, ``.account_pool(...)``,
``.show(name)``, ``.ledger(name)``, ``.wait_synced()`` and ``.sibling(env)`` (another
server on the same database).
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
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import PG_URL, _pg_admin_url

BACKENDS = ("sqlite", "postgres")
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
        if database_url is not None and not database_url.startswith("sqlite"):
            env["SMSGATE_DATABASE_URL"] = database_url
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
        if not self.running:
            return
        target = self.config_rev()
        if target <= self._rev_at_start:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = [int(rev) for rev in RELOADED_RE.findall(self.logs())]
            if seen and max(seen) >= target:
                return
            time.sleep(0.05)

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

    def account_pool(self, balance: int = 0, batch: int = 6) -> AccountPool:
        return AccountPool(self, balance, batch)

    def show(self, username: str) -> dict[str, str]:
        """`smsgate account show NAME` as {label: value}."""
        return parse_show(self.cli("account", "show", username).stdout)

    # -- the database, read directly (for checks only) ---------------------------------

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            url = self.database_url
            for prefix in ("postgresql://", "postgres://"):
                if url.startswith(prefix):
                    url = "postgresql+psycopg://" + url[len(prefix) :]
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


class AccountPool:
    """Fresh accounts on demand, created in concurrent batches.

    For tests against a shared server where every successful /query uses up the
    account's query slot for the interval (60 s by default).
    """

    REFILL = 2  # after the first batch (size it with `pool_demand`)

    def __init__(self, server: ServerProcess, balance: int, batch: int) -> None:
        self.server = server
        self.balance = balance
        self.batch = batch
        self._ready: list[Account] = []

    def take(self) -> Account:
        if not self._ready:
            self._ready = self.server.create_accounts(self.batch, self.balance)
            self.batch = self.REFILL
        return self._ready.pop()


def pool_demand(
    request: pytest.FixtureRequest,
    per_test: Mapping[str, int],
    per_module: Sequence[str] = (),
) -> int:
    """How many accounts the selected tests of the requesting module will take from a pool.

    `per_test`: fixture name -> accounts each test using it takes; `per_module`: module
    scoped fixtures that take one account each. Counted per backend, so that running
    one test creates one account and not a whole module's worth.
    """
    items, backends = [], set()
    for item in request.session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        backend = params.get("shared_database_url")
        if getattr(item, "module", None) is not request.module or backend is None:
            continue
        if backend == "postgres" and not PG_URL:
            continue  # skipped
        items.append(item)
        backends.add(backend)
    if not items:
        return 1
    by_test = sum(n for item in items for name, n in per_test.items() if name in item.fixturenames)
    by_module = sum(1 for name in per_module if any(name in i.fixturenames for i in items))
    return max(1, -(-by_test // len(backends)) + by_module)


def parse_show(output: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in output.splitlines():
        label, _, value = line.partition(" ")
        if label:
            fields[label] = value.strip()
    return fields


def wait_for(
    probe: Callable[[], object],
    done: Callable[[object], bool],
    timeout: float = 2.0,
    interval: float = 0.1,
) -> object:
    """Call `probe` until `done(result)`, for at most `timeout` s; return the last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if done(result) or time.monotonic() >= deadline:
            return result
        time.sleep(interval)


# -- databases -------------------------------------------------------------------------


@contextlib.contextmanager
def _postgres_database() -> Iterator[str]:
    assert PG_URL
    name = f"smsgate_e2e_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(_pg_admin_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.engine.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "backends(*names): run shared_database_url only on these backends"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "shared_database_url" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("backends")
        names = marker.args if marker else BACKENDS
        metafunc.parametrize("shared_database_url", names, indirect=True, scope="module")


@pytest.fixture(scope="module")
def shared_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Like `database_url`, for one module: an empty SQLite or PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'smsgate.db'}"
        return
    if not PG_URL:
        pytest.skip("PostgreSQL: set SMSGATE_TEST_DATABASE_URL to run")
    with _postgres_database() as url:
        yield url


def _data_dir_for(database_url: str, fallback: Path) -> Path:
    """For SQLite the data dir is the database's directory (SMSGATE_DATABASE_URL unset)."""
    if database_url.startswith("sqlite:///"):
        return Path(database_url.removeprefix("sqlite:///")).parent
    return fallback


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP clients in these tests talk to 127.0.0.1 directly, or use the server as proxy."""
    for name in PROXY_ENV:
        monkeypatch.delenv(name, raising=False)


# -- servers ---------------------------------------------------------------------------


@pytest.fixture
def server_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Extra environment for `server`: parametrize indirectly or override the fixture."""
    return dict(getattr(request, "param", {}))


@pytest.fixture
def server(
    database_url: str, tmp_path: Path, server_env: dict[str, str]
) -> Iterator[ServerProcess]:
    """A started server on a fresh database, stopped at teardown."""
    proc = ServerProcess(_data_dir_for(database_url, tmp_path), database_url, server_env)
    try:
        yield proc.start()
    finally:
        proc.close()


@pytest.fixture(scope="module")
def shared_server_env() -> dict[str, str]:
    """Extra environment for `shared_server` and `shared_gateway` (override per module)."""
    return {}


@pytest.fixture(scope="module")
def shared_gateway(
    shared_database_url: str,
    shared_server_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerProcess]:
    """A module's database and settings; not started (start() it, or use only `.cli`)."""
    data_dir = _data_dir_for(shared_database_url, tmp_path_factory.mktemp("data"))
    proc = ServerProcess(data_dir, shared_database_url, shared_server_env)
    try:
        yield proc
    finally:
        proc.close()


@pytest.fixture(scope="module")
def shared_server(shared_gateway: ServerProcess) -> ServerProcess:
    """One started server for a whole module (give each test its own accounts)."""
    if not shared_gateway.running:
        shared_gateway.start()
    return shared_gateway


@pytest.fixture
def spawn_server(database_url: str, tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Factory for extra servers; all are stopped at teardown.

    ``spawn_server(env=None, *, database_url=None, started=True)``: by default on this
    test's `database_url`; several servers on one PostgreSQL database share its data.
    """
    spawned: list[ServerProcess] = []
    default_url = database_url

    def spawn(
        env: Mapping[str, str] | None = None,
        *,
        database_url: str | None = None,
        started: bool = True,
    ) -> ServerProcess:
        url = database_url or default_url
        fallback = tmp_path / f"node{len(spawned)}"
        proc = ServerProcess(_data_dir_for(url, fallback), url, env)
        spawned.append(proc)
        return proc.start() if started else proc

    try:
        yield spawn
    finally:
        for proc in spawned:
            proc.close()


# -- shared by the send and SDK tests (helpers in send_support.py) ------------------------
# A module overrides `pool_balance` or `number_avoid` to change what these hand out.


@pytest.fixture(scope="module")
def provisioner(shared_server: ServerProcess) -> Iterator[Any]:
    from tests.e2e.send_support import Provisioner

    provisioner = Provisioner(shared_server)
    yield provisioner
    provisioner.close()


@pytest.fixture(scope="module")
def pool_balance() -> int:
    return 1000


@pytest.fixture(scope="module")
def pool(provisioner: Any, pool_balance: int) -> Iterator[Any]:
    from tests.e2e.send_support import Pool

    pool = Pool(provisioner, balance=pool_balance)
    yield pool
    pool.close()


@pytest.fixture
def acct(pool: Any) -> Account:
    """An account of this test's own, with the signature 【短信宝】."""
    account: Account = pool.take()
    return account


@pytest.fixture(scope="module")
def number_avoid() -> tuple[str, ...]:
    """Suffixes a module's ordinary numbers must not end in (the simulator's knobs)."""
    return ()


@pytest.fixture(scope="module")
def numbers(number_avoid: tuple[str, ...]) -> Any:
    from tests.e2e.send_support import Numbers

    return Numbers(avoid=number_avoid)


@pytest.fixture(scope="module")
def gate(shared_server: ServerProcess) -> Iterator[Any]:
    from tests.e2e.send_support import Gate

    with httpx.Client(timeout=10, trust_env=False) as client:
        yield Gate(shared_server, client)
