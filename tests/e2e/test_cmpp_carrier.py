"""The `cmpp` carrier kind against smsgate's own CMPP server, in a second process.

Gateway B runs the CMPP server (as a carrier's ISMG would) with the simulator behind it;
gateway A routes its product through a `cmpp` carrier logged in to B with an account's SP
code and secret. Shown: a message sent to A over HTTP is submitted over CMPP, charged on
B, and ends `delivered` on A through B's DELIVER status report (a long one by every
part's report); a user's reply at B reaches A's sender over CMPP; B killed (the link drops)
and started again: A reconnects and what was queued meanwhile is delivered, nothing twice.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa

from tests.e2e.server_support import Account, ServerProcess, free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.backends("sqlite")

SIGNATURE = "短信宝"
SECRET = "carrier-secret"
SP_ID = "300251"
_phones = itertools.count(13900000001)


@pytest.fixture(scope="module")
def ismg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("ismg")
    env = {
        "SMSGATE_CMPP_PORT": str(free_port()),
        "SMSGATE_CMPP_REPORT_POLL_SECONDS": "0.1",
        "SMSGATE_SIMULATOR_DELAY_SECONDS": "0.1",
    }
    proc = ServerProcess(data, f"sqlite:///{data / 'smsgate.db'}", env)
    proc.cli("migrate")
    account = proc.create_account(balance=1000, username="relay")
    proc.cli("signature", "add", account.username, SIGNATURE)
    proc.cli("account", "set", "relay", "--cmpp-sp-id", SP_ID, "--cmpp-secret", SECRET)
    try:
        yield proc.start()
    finally:
        proc.close()


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, ismg: ServerProcess
) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("gw")
    proc = ServerProcess(data, f"sqlite:///{data / 'smsgate.db'}")
    proc.cli("migrate")
    proc.cli(
        "carrier", "add", "cmcc", "--kind", "cmpp", "--host", "127.0.0.1",
        "--port", ismg.env["SMSGATE_CMPP_PORT"], "--sp-id", SP_ID, "--secret", SECRET,
        "--version", "3", "--opt", "response_timeout=3", "--opt", "cooling_seconds=1",
        "--opt", "active_test_seconds=2",
    )  # fmt: skip
    proc.cli("product", "set", "general", "--carriers", "cmcc")
    try:
        yield proc.start()
    finally:
        proc.close()


@pytest.fixture(scope="module")
def sender(gateway: ServerProcess) -> Account:
    account = gateway.create_account(balance=1000)
    gateway.cli("signature", "add", account.username, SIGNATURE)
    gateway.wait_synced()
    return account


def send(gateway: ServerProcess, account: Account, phone: str, text: str) -> str:
    params = {"u": account.username, "p": account.md5, "m": phone, "c": text}
    return httpx.get(f"{gateway.url}/sms", params=params, timeout=10, trust_env=False).text


def message(proc: ServerProcess, phone: str) -> sa.Row | None:
    query = sa.text(
        "SELECT state, carrier_ref, content, units FROM messages WHERE phone = :p "
        "ORDER BY id DESC LIMIT 1"
    )
    with proc.engine.connect() as conn:
        return conn.execute(query, {"p": phone}).first()


def count_messages(proc: ServerProcess, phone: str) -> int:
    with proc.engine.connect() as conn:
        query = sa.text("SELECT count(*) FROM messages WHERE phone = :p")
        return int(conn.execute(query, {"p": phone}).scalar_one())


def delivered(proc: ServerProcess, phone: str, timeout: float = 15) -> sa.Row | None:
    return wait_for(
        lambda: message(proc, phone),
        lambda row: row is not None and row.state == "delivered",
        timeout,
        interval=0.1,
    )


def test_delivered_end_to_end_over_cmpp(
    gateway: ServerProcess, ismg: ServerProcess, sender: Account
) -> None:
    phone = str(next(_phones))
    text = f"【{SIGNATURE}】经CMPP发送"
    assert send(gateway, sender, phone, text) == "0"
    row = delivered(gateway, phone)
    assert row is not None
    assert row.state == "delivered"
    assert re.fullmatch(r"[0-9a-f]{16}", row.carrier_ref)
    on_ismg = delivered(ismg, phone)  # B took it from its CMPP customer and charged it
    assert on_ismg is not None
    assert on_ismg.content == text


def test_long_message_settles_by_every_part(
    gateway: ServerProcess, ismg: ServerProcess, sender: Account
) -> None:
    phone = str(next(_phones))
    text = f"【{SIGNATURE}】" + "一条很长的中文短信，" * 15  # 155 characters: 3 parts
    assert send(gateway, sender, phone, text) == "0"
    row = delivered(gateway, phone)
    assert row is not None
    assert row.state == "delivered"
    on_ismg = delivered(ismg, phone)
    assert on_ismg is not None
    assert on_ismg.content == text  # B reassembled our three UDH parts
    assert on_ismg.units == 3


def test_dropped_link_and_restart(
    gateway: ServerProcess, ismg: ServerProcess, sender: Account
) -> None:
    ismg.kill()  # the link drops without a TERMINATE
    phone = str(next(_phones))
    assert send(gateway, sender, phone, f"【{SIGNATURE}】断线期间") == "0"
    waiting = wait_for(lambda: message(gateway, phone), lambda r: r is not None, 2)
    assert waiting is not None
    assert waiting.state == "accepted"  # not taken while the ISMG is away; queued
    ismg.start()
    row = delivered(gateway, phone, timeout=40)
    assert row is not None
    assert row.state == "delivered"
    assert count_messages(ismg, phone) == 1  # sent once


def test_user_reply_reaches_the_sender_through_cmpp(
    gateway: ServerProcess, ismg: ServerProcess, sender: Account
) -> None:
    phone = str(next(_phones))
    assert send(gateway, sender, phone, f"【{SIGNATURE}】请回复Y") == "0"
    assert delivered(gateway, phone) is not None
    ismg.cli("simulate", "reply", phone, "Y，谢谢")  # the user answers, at B

    def reply() -> sa.Row | None:
        query = sa.text(
            "SELECT mo.content, a.username FROM mo LEFT JOIN accounts a ON a.id = mo.account_id "
            "WHERE mo.phone = :p"
        )
        with gateway.engine.connect() as conn:
            return conn.execute(query, {"p": phone}).first()

    row = wait_for(reply, lambda r: r is not None, 10)
    assert row is not None
    assert (row.content, row.username) == ("Y，谢谢", sender.username)
