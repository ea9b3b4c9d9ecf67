"""Accounts for the end-to-end tests, made fast and ahead of time.

`smsgate account create` + `signature add` cost ~1.5 s of process start-up per account,
and the tests need dozens, so :class:`Provisioner` runs the very same admin service the
CLI runs (``Database.open(Settings()).admin``), in this process, on the server's database.
Every other operator action a test is about (products, words, templates, limits, top-ups,
enabling/disabling, allowlists) goes through the real CLI.

:class:`AccountPool` hands out fresh accounts that a background thread made ahead of
time; the ``pool`` fixture (conftest.py) is one per module, ``pool_balance`` sets their
balance.
"""

from __future__ import annotations

import contextlib
import queue
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from tests.e2e.server_support import Account, ServerProcess, unique_name

SIGNATURE = "短信宝"


class Provisioner:
    """Creates accounts with the CLI's own admin service, in this process (see top)."""

    def __init__(self, server: ServerProcess) -> None:
        from smsgate.database import Database
        from smsgate.settings import Settings

        self.server = server
        settings = Settings(
            data_dir=Path(server.data_dir),
            database_url=server.env.get("SMSGATE_DATABASE_URL"),
        )
        self._database = Database.open(settings, migrate_schema=False)

    def accounts(
        self,
        n: int,
        balance: int = 1000,
        signature: str | None = SIGNATURE,
        *,
        sync: bool = True,
    ) -> list[Account]:
        """`n` new accounts; with `sync`, returns once the running server has them."""
        created = []
        for _ in range(n):
            username, password = unique_name("snd"), f"pw-{random.getrandbits(48):x}"
            new = self._database.admin.create_account(username, password, balance)
            if signature:
                self._database.admin.add_signature(username, signature)
            created.append(Account(username, password, new.api_key))
        if sync:
            self.server.wait_synced()
        return created

    def account(self, balance: int = 1000, signature: str | None = SIGNATURE) -> Account:
        return self.accounts(1, balance, signature)[0]

    def close(self) -> None:
        self._database.close()


class AccountPool:
    """Fresh accounts with the signature 【短信宝】 and a given balance, made ahead of time.

    A background thread keeps up to `ahead` accounts ready (argon2 hashing makes each one
    cost ~0.2 s), so tests rarely wait for one. With `total`, exactly that many are made at
    once, before any test runs: nothing is created (and no snapshot reloaded) while a
    timing-sensitive test runs. :meth:`take` returns an account only once the running
    server has loaded it. Close the pool before its provisioner.
    """

    def __init__(
        self,
        provisioner: Provisioner,
        balance: int = 1000,
        ahead: int = 4,
        total: int | None = None,
    ) -> None:
        self._provisioner = provisioner
        self._balance = balance
        self._ready: queue.Queue[tuple[Account, int]] = queue.Queue(maxsize=total or ahead)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if total is not None:
            for _ in range(total):
                self._ready.put_nowait(self._new())
            return
        self._thread = threading.Thread(target=self._fill, name="account-pool", daemon=True)
        self._thread.start()

    def _new(self) -> tuple[Account, int]:
        """A new account, and the config revision the server must load to know it."""
        [acct] = self._provisioner.accounts(1, self._balance, sync=False)
        return acct, self._provisioner.server.config_rev()

    def _fill(self) -> None:
        try:
            while not self._stop.is_set():
                item = self._new()
                while not self._stop.is_set():
                    with contextlib.suppress(queue.Full):
                        self._ready.put(item, timeout=0.2)
                        break
        except BaseException as exc:  # reported by take()
            self._error = exc

    def take(self) -> Account:
        acct, rev = self._next()
        self._provisioner.server.wait_loaded(rev)
        return acct

    def _next(self) -> tuple[Account, int]:
        if self._thread is None:
            assert not self._ready.empty(), "the pool's `total` is used up"
            return self._ready.get_nowait()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                return self._ready.get(timeout=0.5)
            except queue.Empty:
                if self._error is not None:
                    raise RuntimeError("the account pool failed") from self._error
        raise TimeoutError("no account from the pool within 60 s")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)


@contextlib.contextmanager
def account_pool(
    server: ServerProcess, balance: int, total: int | None = None
) -> Iterator[AccountPool]:
    """A pool with a provisioner of its own on `server` (e.g. a second node)."""
    provisioner = Provisioner(server)
    pool = AccountPool(provisioner, balance, total=total)
    try:
        yield pool
    finally:
        pool.close()
        provisioner.close()
