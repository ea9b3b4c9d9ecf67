"""Moving an installation from SQLite to PostgreSQL: `smsgate copy-database --to URL`.

A server on SQLite takes sends and a reply; it is stopped, its database copied into an
empty PostgreSQL database, and a server started there carries on: the same accounts,
balances, ledger and messages, and new rows get new ids.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.server_support import ServerProcess
from tests.support.databases import PG_SKIP_REASON, PG_URL, postgres_database

pytestmark = pytest.mark.skipif(not PG_URL, reason=PG_SKIP_REASON)


def _send(server: ServerProcess, username: str, md5: str, phone: str, text: str) -> str:
    params = {"u": username, "p": md5, "m": phone, "c": text}
    return httpx.get(f"{server.url}/sms", params=params, timeout=10).text.strip()


def _counts(server: ServerProcess) -> dict[str, int]:
    tables = ("accounts", "ledger", "messages", "mo", "pushes", "signatures", "products")
    with server.engine.connect() as conn:
        return {
            t: int(conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar_one()) for t in tables
        }


def test_an_sqlite_installation_moves_to_postgresql(tmp_path: Path) -> None:
    old = ServerProcess(tmp_path / "old", f"sqlite:///{tmp_path / 'old' / 'smsgate.db'}")
    old.start()
    account = old.create_account(balance=20)
    old.cli("signature", "add", account.username, "搬家测试")
    old.wait_synced()
    for n in range(3):
        assert (
            _send(old, account.username, account.md5, f"1390000000{n}", f"【搬家测试】m{n}") == "0"
        )
    old.cli("simulate", "reply", "13900000000", "收到")
    old.stop()
    before = _counts(old)
    ledger = old.ledger(account.username)

    with postgres_database("smsgate_copy") as url:
        result = old.cli("copy-database", "--to", url)
        assert f"{before['accounts']} account(s), 3 message(s)" in result.stdout
        again = old.cli("copy-database", "--to", url, check=False)
        assert again.returncode == 1
        assert "already holds accounts" in again.stderr
        assert "Traceback" not in again.stderr

        new = ServerProcess(tmp_path / "new", url)
        try:
            new.start()
            assert _counts(new) == before
            assert new.ledger(account.username) == ledger
            assert new.show(account.username)["balance"].split()[0] == "17"
            answer = _send(new, account.username, account.md5, "13900000009", "【搬家测试】after")
            assert answer == "0"  # the copied password hash, signature and balance work
            with new.engine.connect() as conn:
                ids = [
                    int(i) for (i,) in conn.exec_driver_sql("SELECT id FROM messages ORDER BY id")
                ]
            assert len(ids) == 4
            assert ids[-1] > max(ids[:-1])  # the sequence moved past the copied ids
        finally:
            new.close()
    old.close()
