"""`smsgate backup` while sends pour in, and `smsgate restore` into a new data dir.

The backup is one instant of the database: every message answered `0` before it began
is in it, each account's balance equals its ledger, and every message in it was sent
by a client (nothing half-written). A server started on the restored data dir serves
those books. Restoring over a running server's data dir is refused.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.accounts_support import AccountPool
from tests.e2e.send_support import Numbers, books
from tests.e2e.server_support import Account, ServerProcess

pytestmark = pytest.mark.backends("sqlite")

SENDERS = 3
WARM_UP = 1.0  # seconds of sending before the backup starts
AFTER = 0.5  # and after it ends


@pytest.fixture(scope="module")
def pool_balance() -> int:
    return 100_000


@dataclass
class Sent:
    content: str
    answer: str
    answered_at: float  # time.monotonic()


class Load:
    """Threads sending one message per request, each with a unique content."""

    def __init__(self, server: ServerProcess, accounts: list[Account], numbers: Numbers) -> None:
        self.server, self.accounts, self.numbers = server, accounts, numbers
        self.sent: dict[str, list[Sent]] = {a.username: [] for a in accounts}
        self.stop = threading.Event()
        self._serial = itertools.count()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._send, args=(a,)) for a in accounts]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(10)

    def _send(self, acct: Account) -> None:
        with httpx.Client(base_url=self.server.url, timeout=10, trust_env=False) as client:
            while not self.stop.is_set():
                with self._lock:
                    phone, n = self.numbers.one(), next(self._serial)
                text = f"【短信宝】备份测试 {n}"
                params = {"u": acct.username, "p": acct.api_key, "m": phone, "c": text}
                answer = client.get("/sms", params=params).text
                self.sent[acct.username].append(Sent(text, answer, time.monotonic()))

    def accepted_before(self, instant: float) -> dict[str, set[str]]:
        return {
            name: {s.content for s in sent if s.answer == "0" and s.answered_at < instant}
            for name, sent in self.sent.items()
        }


def contents(database: Path, username: str) -> set[str]:
    with sqlite3.connect(database) as conn:
        rows = conn.execute(
            "SELECT m.content FROM messages m JOIN accounts a ON a.id = m.account_id "
            "WHERE a.username = ?",
            (username,),
        ).fetchall()
    return {row[0] for row in rows}


def test_a_backup_under_load_restores_to_consistent_books(
    shared_server: ServerProcess, pool: AccountPool, numbers: Numbers, tmp_path: Path
) -> None:
    accounts = [pool.take() for _ in range(SENDERS)]
    backup_file = tmp_path / "smsgate-backup.db"
    with Load(shared_server, accounts, numbers) as load:
        time.sleep(WARM_UP)
        began = time.monotonic()
        result = shared_server.cli("backup", str(backup_file))
        time.sleep(AFTER)
    assert "backed up" in result.stdout
    assert backup_file.stat().st_mode & 0o777 == 0o600
    accepted = load.accepted_before(began)
    assert sum(map(len, accepted.values())) >= 10, "too little was sent before the backup"

    refused = shared_server.cli("restore", str(backup_file), "--force", check=False)
    assert refused.returncode == 1
    assert "a server or worker is running" in refused.stderr

    restored_dir = tmp_path / "restored"
    shared_server.cli("restore", str(backup_file), "--data-dir", str(restored_dir))
    restored = ServerProcess(restored_dir, None)
    try:
        for acct in accounts:
            stored = contents(restored_dir / "smsgate.db", acct.username)
            assert accepted[acct.username] <= stored, "a message answered 0 is missing"
            assert stored <= {s.content for s in load.sent[acct.username]}
            b = books(restored, acct.username)
            assert b.balance == b.ledger_sum
            assert b.sent == b.charged == b.message_cost
            assert b.messages == len(stored)
        restored.start()
        acct = accounts[0]
        answer = httpx.get(
            f"{restored.url}/query", params={"u": acct.username, "p": acct.api_key}
        ).text
        b = books(restored, acct.username)
        assert answer == f"0\n{b.sent},{b.balance}"
    finally:
        restored.close()


def test_restore_refuses_what_is_not_an_smsgate_backup(
    shared_gateway: ServerProcess, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all")
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    for path, says in ((junk, "not an SQLite database"), (other, "not an smsgate database")):
        result = shared_gateway.cli(
            "restore", str(path), "--data-dir", str(tmp_path / "new"), check=False
        )
        assert result.returncode == 1
        assert says in result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "new" / "smsgate.db").exists()
