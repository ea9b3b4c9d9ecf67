"""Nothing stays in flight for ever, and what nobody owns gets an owner, end to end:

- `kill -9` with simulator reports pending, restart: every message ends final or `unknown`
  (a number the simulator never reports on, after the report timeout); none stays
  `submitted`; `messages settle --failed --refund` twice refunds once;
- a reply to a disabled account is held, and pushed once the account is enabled again;
- `mo assign` gives an unmatched reply an owner and pushes it once.
"""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa

from tests.e2e.server_support import ServerProcess
from tests.receivers import Receiver
from tests.support.waiting import wait_for

STALL = "5555"
FINAL = {"delivered", "undelivered", "failed", "expired"}


@pytest.fixture
def server_env() -> dict[str, str]:
    return {
        "SMSGATE_SIMULATOR_DELAY_SECONDS": "2",  # reports still pending at the kill
        "SMSGATE_SIMULATOR_STALL_SUFFIX": STALL,  # never reported: the timeout's case
        # 10.8 s: longer than a restart plus the simulator's delay, so the re-derived
        # reports come first; the stalled number's never does.
        "SMSGATE_REPORT_TIMEOUT_HOURS": "0.003",
        "SMSGATE_CLAIM_LEASE_SECONDS": "2",
    }


def states(server: ServerProcess) -> dict[str, tuple[str, str | None]]:
    with server.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT phone, state, error FROM messages")).all()
    return {r.phone: (r.state, r.error) for r in rows}


def refunds(server: ServerProcess) -> list[str]:
    with server.engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT ref FROM ledger WHERE kind = 'refund'")).scalars())


def test_kill_with_reports_pending_then_every_message_ends_final_or_unknown(
    server: ServerProcess,
) -> None:
    acct = server.create_account(100)
    server.cli("signature", "add", acct.username, "短信宝")
    server.wait_synced()
    phones = ["13800138001", "13800138002", "13800138003", "1380013" + STALL]
    params = {"u": acct.username, "p": acct.md5, "m": ",".join(phones), "c": "【短信宝】崩溃前"}
    assert httpx.get(f"{server.url}/sms", params=params, trust_env=False).text == "0"
    submitted = wait_for(
        lambda: states(server),
        lambda s: len(s) == 4 and all(state == "submitted" for state, _ in s.values()),
        timeout=10,
        interval=0.02,
    )
    assert all(state == "submitted" for state, _ in submitted.values()), submitted
    server.kill()  # the simulator's pending reports die with it

    server.start()
    ended = wait_for(
        lambda: states(server),
        lambda s: all(state in FINAL | {"unknown"} for state, _ in s.values()),
        timeout=40,
        interval=0.2,
    )
    assert {p: s for p, (s, _) in ended.items()} == {
        **dict.fromkeys(phones[:3], "delivered"),  # re-derived on start
        phones[3]: "unknown",  # never reported: the report timeout
    }, ended
    assert ended[phones[3]][1] == "no delivery report within 0.003 h of submission"

    listed = server.cli("messages", "--state", "unknown").stdout
    assert phones[3] in listed
    assert "note: no delivery report" in listed

    (stuck_id,) = _ids(server, "unknown")
    before = int(server.show(acct.username)["balance"])
    first = server.cli("messages", "settle", str(stuck_id), "--failed", "--refund").stdout
    again = server.cli("messages", "settle", str(stuck_id), "--failed", "--refund").stdout
    assert "refunded 1 message(s), 1 unit(s)" in first
    assert f"skipped {stuck_id}: already failed" in again
    assert refunds(server) == [f"message:{stuck_id}"]
    assert int(server.show(acct.username)["balance"]) == before + 1


def _ids(server: ServerProcess, state: str) -> list[int]:
    with server.engine.connect() as conn:
        return list(
            conn.execute(
                sa.text("SELECT id FROM messages WHERE state = :s"), {"s": state}
            ).scalars()
        )


def _mo_id(server: ServerProcess, phone: str) -> int:
    with server.engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT id FROM mo WHERE phone = :p ORDER BY id DESC"), {"p": phone}
            )
            .scalars()
            .first()
        )


def test_a_disabled_accounts_reply_is_held_then_pushed_after_re_enable(
    server: ServerProcess,
) -> None:
    acct = server.create_account(10)
    with Receiver("0") as receiver:
        server.cli("account", "set", acct.username, "--mo-url", receiver.url(),
                   "--ext-code", "77", "--disable")  # fmt: skip
        server.wait_synced()
        server.cli("simulate", "reply", "13900000001", "收到", "--to", "77")
        assert receiver.wait_for(1, timeout=3) == []  # held, not pushed
        server.cli("account", "set", acct.username, "--enable")
        hits = receiver.wait_for(1, timeout=10)
        assert [h.c for h in hits] == ["收到"]


def test_mo_assign_pushes_an_unmatched_reply_once(server: ServerProcess) -> None:
    acct = server.create_account(10)
    with Receiver("0") as receiver:
        server.cli("account", "set", acct.username, "--mo-url", receiver.url())
        server.cli("simulate", "reply", "13900000002", "谁的回复")
        mo_id = _mo_id(server, "13900000002")
        assert "13900000002" in server.cli("mo", "list", "--unmatched").stdout
        assigned = server.cli("mo", "assign", str(mo_id), acct.username).stdout
        assert f"reply {mo_id} now belongs to {acct.username}" in assigned
        again = server.cli("mo", "assign", str(mo_id), acct.username, check=False)
        assert again.returncode == 1
        assert f"already belongs to {acct.username}" in again.stderr
        hits = receiver.wait_for(1, timeout=10)
        assert [h.c for h in hits] == ["谁的回复"]
        assert receiver.wait_for(2, timeout=2) == hits  # once
