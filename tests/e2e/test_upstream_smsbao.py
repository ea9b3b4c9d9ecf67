"""smsgate A relays a product to smsgate B through the `smsbao` upstream kind.

Two real server processes. A's route for the product is ``b`` (an `smsbao` carrier pointed at
B's URL with an account on B) then ``backup`` (a simulator). Shown:

- a message sent to A is recorded by B exactly once and ends `delivered` on A (SMSBao sends no
  receipt: delivered is assumed on B's `0`, docs/decisions.md);
- B down: the next carrier of the route takes the message;
- B answering `41` (its account is empty): the next carrier takes it, and A's customer is
  charged once;
- B restarted while messages flow: every message A accepted ends delivered, through B or the
  backup, none twice.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.e2e.server_support import Account, ServerProcess, unique_name
from tests.support.waiting import wait_for

pytestmark = pytest.mark.backends("sqlite")

SIGNATURE = "中继测试"
FAST = {
    "SMSGATE_SIMULATOR_DELAY_SECONDS": "0.05",
}
_phones = itertools.count(13700000001)


@pytest.fixture(scope="module")
def gateway_b(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("b")
    proc = ServerProcess(data, f"sqlite:///{data / 'smsgate.db'}", FAST)
    proc.cli("migrate")
    try:
        yield proc.start()
    finally:
        proc.close()


@pytest.fixture(scope="module")
def relay_account(gateway_b: ServerProcess) -> Account:
    """A's account on B: what the `b` carrier logs in with."""
    account = gateway_b.create_account(balance=1000)
    gateway_b.cli("signature", "add", account.username, SIGNATURE)
    gateway_b.wait_synced()
    return account


@pytest.fixture(scope="module")
def gateway_a(
    tmp_path_factory: pytest.TempPathFactory, gateway_b: ServerProcess, relay_account: Account
) -> Iterator[ServerProcess]:
    data: Path = tmp_path_factory.mktemp("a")
    proc = ServerProcess(data, f"sqlite:///{data / 'smsgate.db'}", FAST)
    proc.cli("migrate")
    proc.cli(
        "carrier", "add", "b", "--kind", "smsbao", "--url", gateway_b.url,
        "--username", relay_account.username, "--password", relay_account.password,
        "--opt", "timeout=3", "--opt", "cooling_seconds=2",
    )  # fmt: skip
    proc.cli("carrier", "add", "backup", "--kind", "simulator")
    proc.cli("product", "set", "general", "--carriers", "b,backup")
    try:
        yield proc.start()
    finally:
        proc.close()


@pytest.fixture
def customer(gateway_a: ServerProcess) -> Account:
    account = gateway_a.create_account(balance=100)
    gateway_a.cli("signature", "add", account.username, SIGNATURE)
    gateway_a.wait_synced()
    return account


def send(server: ServerProcess, account: Account, phone: str, text: str) -> str:
    answer = httpx.get(
        f"{server.url}/sms",
        params={"u": account.username, "p": account.md5, "m": phone, "c": text},
        timeout=10,
    )
    return answer.text


def messages(server: ServerProcess, username: str) -> list[tuple[str, str, str]]:
    """(phone, state, carrier) of the account's messages, oldest first."""
    with server.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT m.phone, m.state, m.carrier FROM messages m "
                "JOIN accounts a ON a.id = m.account_id WHERE a.username = :u ORDER BY m.id"
            ),
            {"u": username},
        ).all()
    return [(str(p), str(s), str(c)) for p, s, c in rows]


def balance(server: ServerProcess, username: str) -> int:
    return sum(delta for delta, _, _ in server.ledger(username))


def settled(rows: list[tuple[str, str, str]]) -> bool:
    return bool(rows) and all(state not in ("accepted", "submitted") for _, state, _ in rows)


def text(label: str) -> str:
    return f"【{SIGNATURE}】{label} {unique_name('t')}"


def test_message_sent_to_a_is_recorded_by_b_once_and_delivered_on_a(
    gateway_a: ServerProcess, gateway_b: ServerProcess, relay_account: Account, customer: Account
) -> None:
    phone = str(next(_phones))
    before_b = len(messages(gateway_b, relay_account.username))
    assert send(gateway_a, customer, phone, text("验证码1234")) == "0"
    on_a = wait_for(lambda: messages(gateway_a, customer.username), settled, timeout=10)
    assert on_a == [(phone, "delivered", "b")]
    on_b = messages(gateway_b, relay_account.username)[before_b:]
    assert [p for p, _, _ in on_b] == [phone]
    assert balance(gateway_a, customer.username) == 99


def test_carrier_show_has_the_upstream_balance_and_no_secret(
    gateway_a: ServerProcess, gateway_b: ServerProcess, relay_account: Account
) -> None:
    def live() -> dict[str, object]:
        shown = json.loads(gateway_a.cli("carrier", "show", "b", "--json").stdout)
        statuses = list(shown["live"].values())
        return {"options": shown["options"], **(statuses[0] if statuses else {})}

    shown = wait_for(live, lambda s: s.get("balance") is not None, timeout=10)
    # /query is asked at start and then once a minute (the API's limit): B's balance then.
    assert balance(gateway_b, relay_account.username) <= shown["balance"] <= 1000  # type: ignore[operator]
    assert shown["state"] == "running"
    assert relay_account.password not in json.dumps(shown)
    assert relay_account.md5 not in json.dumps(shown)
    assert shown["options"]["password"] == "set"  # type: ignore[index]


def test_b_down_the_next_carrier_takes_the_message(
    gateway_a: ServerProcess, gateway_b: ServerProcess, relay_account: Account, customer: Account
) -> None:
    phone = str(next(_phones))
    gateway_b.stop()
    try:
        assert send(gateway_a, customer, phone, text("B 停机")) == "0"
        on_a = wait_for(lambda: messages(gateway_a, customer.username), settled, timeout=15)
        assert on_a == [(phone, "delivered", "backup")]
    finally:
        gateway_b.start()
    assert phone not in [p for p, _, _ in messages(gateway_b, relay_account.username)]
    assert balance(gateway_a, customer.username) == 99


def test_b_out_of_balance_fails_over_and_charges_once(
    gateway_a: ServerProcess, gateway_b: ServerProcess, relay_account: Account, customer: Account
) -> None:
    phone = str(next(_phones))
    left = balance(gateway_b, relay_account.username)
    gateway_b.cli("account", "adjust", relay_account.username, str(-left), "--reason", "test 41")
    gateway_b.wait_synced()
    try:
        assert send(gateway_a, customer, phone, text("B 余额不足")) == "0"
        on_a = wait_for(lambda: messages(gateway_a, customer.username), settled, timeout=15)
        assert on_a == [(phone, "delivered", "backup")]
    finally:
        gateway_b.cli("account", "topup", relay_account.username, str(left))
        gateway_b.wait_synced()
    assert phone not in [p for p, _, _ in messages(gateway_b, relay_account.username)]
    assert balance(gateway_a, customer.username) == 99
    kinds = [kind for _, kind, _ in gateway_a.ledger(customer.username)]
    assert kinds.count("charge") == 1
    assert "refund" not in kinds


def test_b_restarted_mid_run_loses_nothing(
    gateway_a: ServerProcess, gateway_b: ServerProcess, relay_account: Account, customer: Account
) -> None:
    before_b = len(messages(gateway_b, relay_account.username))
    phones = [str(next(_phones)) for _ in range(12)]
    for i, phone in enumerate(phones):
        if i == 4:
            # What A handed to B before the stop has its answer: a submit cut off by the
            # stop would rightly end `unknown` (never re-sent), which is not this test.
            wait_for(
                lambda: messages(gateway_a, customer.username),
                lambda rows: sum(p in phones[:4] and s != "accepted" for p, s, _ in rows) == 4,
                timeout=20,
            )
            gateway_b.stop()
        if i == 8:
            gateway_b.start()
        assert send(gateway_a, customer, phone, text(f"第{i}条")) == "0"
    on_a = wait_for(
        lambda: messages(gateway_a, customer.username),
        lambda rows: len(rows) == len(phones) and settled(rows),
        timeout=20,
    )
    assert sorted(p for p, _, _ in on_a) == sorted(phones)
    assert {state for _, state, _ in on_a} == {"delivered"}
    through_b = sorted(p for p, _, c in on_a if c == "b")
    on_b = sorted(p for p, _, _ in messages(gateway_b, relay_account.username)[before_b:])
    assert on_b == through_b  # B has exactly the ones A says it took, each once
    assert balance(gateway_a, customer.username) == 100 - len(phones)
