"""smsgate's CMPP server with independent PyPI clients as customers (docs/cmpp.md).

One real `smsgate serve` (SQLite, and PostgreSQL where configured) with the CMPP port on
(the `cmpp_port` setting), messages going through the built-in simulator. `pycmpp` (CMPP
2.0) and `cmppy` (CMPP 3.0) log in with an account's SP code and shared secret and submit.
Shown: a SUBMIT is charged like `/sms`; refusals come back as the documented Result (bad
signature 52, balance 41); bad logins as CONNECT Status 3 / 2; a message reaches
`delivered` and the client receives the DELIVER status report for its Msg_Id; a long
Chinese message (pycmpp's own UDH parts) is accepted whole and billed once; a report owed
while the client is away (or across a restart) waits for its next login; replies come
back as DELIVER; the connection limit, a disabled account and the IP allowlist refuse
the login.
"""

from __future__ import annotations

import itertools

import pytest
import sqlalchemy as sa

from tests.e2e.cmpp_clients import PycmppCustomer, cmppy_login_status, cmppy_submit
from tests.e2e.server_support import ServerProcess, free_port
from tests.support.waiting import wait_for

SIGNATURE = "短信宝"
SECRET = "s3cret-cmpp"
_sp_ids = itertools.count(300250)
_phones = itertools.count(13800000001)


@pytest.fixture(scope="module")
def shared_server_env() -> dict[str, str]:
    return {
        "SMSGATE_CMPP_PORT": str(free_port()),
        "SMSGATE_CMPP_REPORT_POLL_SECONDS": "0.1",
        "SMSGATE_SIMULATOR_DELAY_SECONDS": "0.2",
    }


@pytest.fixture
def gateway(shared_server: ServerProcess) -> ServerProcess:
    """One server for the module, on SQLite and on PostgreSQL."""
    return shared_server


def cmpp_port(gateway: ServerProcess) -> int:
    return int(gateway.env["SMSGATE_CMPP_PORT"])


def customer(gateway: ServerProcess, balance: int = 100) -> tuple[str, str]:
    """A new account with a CMPP login: (username, SP code)."""
    account = gateway.create_account(balance=balance)
    sp_id = str(next(_sp_ids))
    gateway.cli("signature", "add", account.username, SIGNATURE)
    gateway.cli("account", "set", account.username, "--cmpp-sp-id", sp_id, "--cmpp-secret", SECRET)
    gateway.wait_synced()
    return account.username, sp_id


def messages(gateway: ServerProcess, username: str) -> list[sa.Row]:
    query = sa.text(
        "SELECT m.content, m.units, m.cost, m.state, m.phone FROM messages m "
        "JOIN accounts a ON a.id = m.account_id WHERE a.username = :u ORDER BY m.id"
    )
    with gateway.engine.connect() as conn:
        return list(conn.execute(query, {"u": username}))


def balance(gateway: ServerProcess, username: str) -> int:
    return int(gateway.show(username)["balance"])


def owed_reports(gateway: ServerProcess, username: str) -> int:
    query = sa.text(
        "SELECT count(*) FROM cmpp_reports r JOIN accounts a ON a.id = r.account_id "
        "WHERE a.username = :u"
    )
    with gateway.engine.connect() as conn:
        return int(conn.execute(query, {"u": username}).scalar_one())


def test_account_show_never_prints_the_secret(gateway: ServerProcess) -> None:
    username, sp_id = customer(gateway)
    shown = gateway.cli("account", "show", username).stdout
    assert f"SP {sp_id}, secret set" in shown
    assert SECRET not in shown
    assert SECRET not in gateway.cli("account", "list").stdout


def test_pycmpp_submit_is_charged_and_reported_delivered(gateway: ServerProcess) -> None:
    username, sp_id = customer(gateway)
    phone = str(next(_phones))
    client = PycmppCustomer("127.0.0.1", cmpp_port(gateway), sp_id, SECRET)
    try:
        assert client.login() == 0
        client.submit(f"【{SIGNATURE}】您的验证码是1234", [phone])
        assert client.wait(lambda s: s.submit_resps), "no SUBMIT_RESP"
        msg_id, result = client.seen.submit_resps[0]
        assert result == 0
        assert client.wait(lambda s: s.reports), "no status report"
        report = client.seen.reports[0]
        assert (report.msg_id, report.stat, report.dest) == (msg_id, "DELIVRD", phone)
    finally:
        client.close()
    assert balance(gateway, username) == 99
    [row] = messages(gateway, username)
    assert (row.content, row.state, row.phone) == (
        f"【{SIGNATURE}】您的验证码是1234",
        "delivered",
        phone,
    )
    # Answered with DELIVER_RESP: nothing is owed any more.
    assert wait_for(lambda: owed_reports(gateway, username), lambda n: n == 0) == 0


def test_pycmpp_long_chinese_message_arrives_whole_and_is_billed_once(
    gateway: ServerProcess,
) -> None:
    username, sp_id = customer(gateway)
    text = f"【{SIGNATURE}】" + "长短信内容测试，" * 20  # 165 characters: 3 parts of 67
    client = PycmppCustomer("127.0.0.1", cmpp_port(gateway), sp_id, SECRET)
    try:
        assert client.login() == 0
        client.submit(text, [str(next(_phones))])  # pycmpp: 64 characters a part, with UDH
        assert client.wait(lambda s: len(s.submit_resps) == 3), client.seen.submit_resps
        assert [result for _, result in client.seen.submit_resps] == [0, 0, 0]
        # Every part's Msg_Id gets its report.
        assert client.wait(lambda s: len(s.reports) == 3), client.seen.reports
        assert {r.msg_id for r in client.seen.reports} == {m for m, _ in client.seen.submit_resps}
    finally:
        client.close()
    [row] = messages(gateway, username)
    assert row.content == text
    assert row.units == 3
    assert balance(gateway, username) == 100 - 3


def test_pycmpp_bad_secret_is_refused_with_status_3(gateway: ServerProcess) -> None:
    _, sp_id = customer(gateway)
    client = PycmppCustomer("127.0.0.1", cmpp_port(gateway), sp_id, "wrong")
    try:
        assert client.login() == 3
        assert client.wait(lambda s: s.closed.is_set())  # the server hangs up
    finally:
        client.close()


def test_cmppy_submit_is_charged(gateway: ServerProcess) -> None:
    username, sp_id = customer(gateway)
    phone = str(next(_phones))
    answer = cmppy_submit(
        "127.0.0.1", cmpp_port(gateway), sp_id, SECRET, phone, f"【{SIGNATURE}】三点零"
    )
    assert answer is not None
    msg_id, result = answer
    assert result == 0
    assert msg_id != 0
    assert balance(gateway, username) == 99
    assert [r.phone for r in messages(gateway, username)] == [phone]
    assert owed_reports(gateway, username) == 0  # cmppy asks for no report (Registered_Delivery 0)


@pytest.mark.parametrize(
    ("balance_units", "text", "result"),
    [
        (100, "没有签名的短信", 52),  # signature missing
        (0, f"【{SIGNATURE}】余额不足", 41),  # insufficient balance
    ],
)
def test_cmppy_refusals_map_to_results(
    gateway: ServerProcess, balance_units: int, text: str, result: int
) -> None:
    username, sp_id = customer(gateway, balance=balance_units)
    answer = cmppy_submit("127.0.0.1", cmpp_port(gateway), sp_id, SECRET, "13800138000", text)
    assert answer is not None
    assert answer[1] == result
    assert messages(gateway, username) == []
    assert balance(gateway, username) == balance_units


def test_cmppy_bad_logins(gateway: ServerProcess) -> None:
    _, sp_id = customer(gateway)
    port = cmpp_port(gateway)
    assert cmppy_login_status("127.0.0.1", port, sp_id, "wrong") == 3
    assert cmppy_login_status("127.0.0.1", port, "999999", SECRET) == 2
    assert cmppy_login_status("127.0.0.1", port, sp_id, SECRET) == 0


def test_report_held_while_away_comes_on_next_login(gateway: ServerProcess) -> None:
    username, sp_id = customer(gateway)
    phone = str(next(_phones))
    first = PycmppCustomer("127.0.0.1", cmpp_port(gateway), sp_id, SECRET)
    try:
        assert first.login() == 0
        first.submit(f"【{SIGNATURE}】稍后再收", [phone])
        assert first.wait(lambda s: s.submit_resps)
        msg_id, _ = first.seen.submit_resps[0]
    finally:
        first.close()  # gone before the simulator delivers
    rows = wait_for(lambda: messages(gateway, username), lambda r: r[0].state == "delivered", 5)
    assert rows[0].state == "delivered"
    assert owed_reports(gateway, username) == 1
    second = PycmppCustomer("127.0.0.1", cmpp_port(gateway), sp_id, SECRET)
    try:
        assert second.login() == 0
        assert second.wait(lambda s: s.reports), "held report not delivered"
        assert second.seen.reports[0].msg_id == msg_id
    finally:
        second.close()
    assert wait_for(lambda: owed_reports(gateway, username), lambda n: n == 0) == 0


def test_user_reply_comes_back_as_deliver(gateway: ServerProcess) -> None:
    username, sp_id = customer(gateway)
    phone = str(next(_phones))
    client = PycmppCustomer("127.0.0.1", cmpp_port(gateway), sp_id, SECRET)
    try:
        assert client.login() == 0
        client.submit(f"【{SIGNATURE}】请回复", [phone])
        assert client.wait(lambda s: s.reports), "no status report"
        said = gateway.cli("simulate", "reply", phone, "好的，收到").stdout
        assert username in said  # matched to the account that last sent to the number
        assert client.wait(lambda s: s.replies), "no reply DELIVER"
        assert client.seen.replies == [(phone, "好的，收到")]
    finally:
        client.close()

    def owed() -> int:
        with gateway.engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM cmpp_replies")).scalar_one())

    assert wait_for(owed, lambda n: n == 0) == 0  # answered: forgotten


def test_connection_limit_per_account(gateway: ServerProcess) -> None:
    _, sp_id = customer(gateway)
    port = cmpp_port(gateway)
    clients = [PycmppCustomer("127.0.0.1", port, sp_id, SECRET) for _ in range(5)]
    try:
        statuses = [client.login() for client in clients]
        assert statuses == [0, 0, 0, 0, 7]  # cmpp_connections_per_account: 4 by default
    finally:
        for client in clients:
            client.close()

    def login_once() -> int | None:
        client = PycmppCustomer("127.0.0.1", port, sp_id, SECRET)
        try:
            return client.login()
        finally:
            client.close()

    assert wait_for(login_once, lambda status: status == 0, 2) == 0  # freed on close


def test_owed_report_survives_a_restart(gateway: ServerProcess) -> None:
    username, sp_id = customer(gateway)
    phone = str(next(_phones))
    first = PycmppCustomer("127.0.0.1", cmpp_port(gateway), sp_id, SECRET, answer=False)
    try:
        assert first.login() == 0
        first.submit(f"【{SIGNATURE}】重启之前", [phone])
        assert first.wait(lambda s: s.submit_resps)
        msg_id, _ = first.seen.submit_resps[0]
        assert first.wait(lambda s: s.reports)  # received, deliberately not answered
    finally:
        first.close()
    gateway.stop()
    gateway.start()
    assert owed_reports(gateway, username) == 1
    second = PycmppCustomer("127.0.0.1", cmpp_port(gateway), sp_id, SECRET)
    try:
        assert second.login() == 0
        assert second.wait(lambda s: s.reports), "report lost in the restart"
        assert [r.msg_id for r in second.seen.reports] == [msg_id]
    finally:
        second.close()
    assert wait_for(lambda: owed_reports(gateway, username), lambda n: n == 0) == 0


def test_login_refused_for_disabled_account_and_foreign_address(gateway: ServerProcess) -> None:
    port = cmpp_port(gateway)
    disabled, disabled_sp = customer(gateway)
    gateway.cli("account", "set", disabled, "--disable")
    fenced, fenced_sp = customer(gateway)
    gateway.cli("account", "allow-ip", fenced, "10.9.8.0/24")
    gateway.wait_synced()
    assert cmppy_login_status("127.0.0.1", port, disabled_sp, SECRET) == 5
    assert cmppy_login_status("127.0.0.1", port, fenced_sp, SECRET) == 6
