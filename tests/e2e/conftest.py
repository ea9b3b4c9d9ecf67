"""End-to-end fixtures: the real `smsgate serve` process on a free port, and the real CLI.

Fixtures (all yield or return a :class:`~tests.e2e.server_support.ServerProcess`):

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

Accounts on the shared server: ``pool`` (module scoped :class:`AccountPool`, balance from the
module-scoped ``pool_balance`` fixture), ``acct`` (one account of the test's own) and
``provisioner``. Helpers live in the *_support.py modules beside this one.

Backends: ``shared_database_url`` runs on SQLite and PostgreSQL (PostgreSQL is skipped unless
SMSGATE_TEST_DATABASE_URL is set). Restrict a module or test with
``pytest.mark.backends("sqlite")``. The function-scoped ``database_url`` (tests/conftest.py)
is restricted with ``@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import httpx
import pytest

from tests.e2e.accounts_support import AccountPool, Provisioner
from tests.e2e.send_support import Gate, Numbers
from tests.e2e.server_support import PROXY_ENV, Account, ServerProcess
from tests.support.databases import PG_SKIP_REASON, PG_URL, postgres_database

BACKENDS = ("sqlite", "postgres")


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
        pytest.skip(PG_SKIP_REASON)
    with postgres_database("smsgate_e2e") as url:
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


# -- accounts and sends on the shared server --------------------------------------------
# A module overrides `pool_balance` or `number_avoid` to change what these hand out.


@pytest.fixture(scope="module")
def provisioner(shared_server: ServerProcess) -> Iterator[Provisioner]:
    provisioner = Provisioner(shared_server)
    yield provisioner
    provisioner.close()


@pytest.fixture(scope="module")
def pool_balance() -> int:
    return 1000


@pytest.fixture(scope="module")
def pool(provisioner: Provisioner, pool_balance: int) -> Iterator[AccountPool]:
    pool = AccountPool(provisioner, balance=pool_balance)
    yield pool
    pool.close()


@pytest.fixture
def acct(pool: AccountPool) -> Account:
    """An account of this test's own, with the signature 【短信宝】."""
    return pool.take()


@pytest.fixture(scope="module")
def number_avoid() -> tuple[str, ...]:
    """Suffixes a module's ordinary numbers must not end in (the simulator's knobs)."""
    return ()


@pytest.fixture(scope="module")
def numbers(number_avoid: tuple[str, ...]) -> Numbers:
    return Numbers(avoid=number_avoid)


@pytest.fixture(scope="module")
def gate(shared_server: ServerProcess) -> Iterator[Gate]:
    with httpx.Client(timeout=10, trust_env=False) as client:
        yield Gate(shared_server, client)
