"""The operator's and the customer's remaining console tasks over plain HTTP, against the
real server: disable and expiry end a customer's session and the API answers 42; private
products granted; words imported from a file and tested; an unmatched reply assigned;
every operator action in the audit log under the operator's name; the MO URL refuses
private addresses; the IP allowlist is edited."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import httpx
import pytest

from tests.e2e.console_support import close_clients, csrf_of, new_client, signed_in, token
from tests.e2e.send_support import SEND_ENV
from tests.e2e.server_support import Account, ServerProcess, unique_name

OPERATOR_PASSWORD = "operator-pw-1"
FLASH = re.compile(r'class="flash (ok|error)"[^>]*>([^<]*)<')


@pytest.fixture(scope="module")
def shared_server_env() -> dict[str, str]:
    return dict(SEND_ENV)


class Ops(NamedTuple):
    server: ServerProcess
    name: str


@pytest.fixture(scope="module")
def ops_world(shared_server: ServerProcess) -> Ops:
    name = unique_name("op")
    shared_server.cli_many(
        ("operator", "create", name, "--password", OPERATOR_PASSWORD),
        ("product", "add", "vip", "VIP channel", "--private"),
    )
    shared_server.wait_synced()
    return Ops(shared_server, name)


@pytest.fixture(autouse=True)
def _clients() -> Iterator[None]:
    yield
    close_clients()


def operator(world: Ops) -> httpx.Client:
    return signed_in(world.server.url, "operator", world.name, OPERATOR_PASSWORD)


def post(client: httpx.Client, path: str, data: dict[str, str], page: str = "/") -> str:
    """Post a form from ``page``; the message the next page shows (the flash)."""
    answer = client.post(
        path,
        data={"csrf": token(client, page), **data},
        headers={"Referer": str(client.base_url.join(page))},
    )
    assert answer.status_code in (200, 303), answer.text[-300:]
    shown = client.get(answer.headers["location"]) if answer.status_code == 303 else answer
    found = FLASH.search(shown.text)
    return f"{found.group(1)}: {found.group(2)}" if found else ""


def allowlist(html: str) -> str:
    return html.split('id="allowlist"')[1].split("</ul>")[0]


def sms(server: ServerProcess, acct: Account, phone: str, text: str, g: str = "") -> str:
    params = {"u": acct.username, "p": acct.api_key, "m": phone, "c": text, "g": g}
    return httpx.get(f"{server.url}/sms", params=params, trust_env=False).text


def test_disabling_ends_the_customers_session_and_the_api_answers_42(ops_world: Ops) -> None:
    server = ops_world.server
    acct = server.create_account(10)
    me = signed_in(server.url, "customer", acct.username, acct.password)
    assert me.get("/console").status_code == 200
    ops = operator(ops_world)
    page = f"/ops/accounts/{acct.username}"
    assert post(ops, f"{page}/status", {"enabled": "0"}, page).startswith("ok")
    server.wait_synced()
    assert me.get("/console").status_code == 303  # signed out by the change
    assert sms(server, acct, "13900000001", "【x】hi").startswith("42")
    assert post(ops, f"{page}/status", {"enabled": "1"}, page).startswith("ok")
    server.wait_synced()
    assert me.get("/console").status_code == 303  # that session stays ended
    assert sms(server, acct, "13900000001", "【x】hi") != "42"
    signed_in(server.url, "customer", acct.username, acct.password)  # a new one starts


def test_an_expiry_in_the_past_stops_sign_in_and_clearing_it_restores(ops_world: Ops) -> None:
    server = ops_world.server
    acct = server.create_account(10)
    ops = operator(ops_world)
    page = f"/ops/accounts/{acct.username}"
    yesterday = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    assert post(ops, f"{page}/expiry", {"expires": yesterday}, page).startswith("ok")
    server.wait_synced()
    client = new_client(server.url)
    answer = client.post(
        "/signin",
        data={
            "csrf": csrf_of(client.get("/signin").text),
            "role": "customer",
            "username": acct.username,
            "password": acct.password,
        },
    )
    assert answer.status_code == 401
    assert "已停用或已过期" in answer.text
    assert post(ops, f"{page}/expiry", {"expires": ""}, page).startswith("ok")
    server.wait_synced()
    signed_in(server.url, "customer", acct.username, acct.password)


def test_a_granted_private_product_can_be_sent_with(ops_world: Ops) -> None:
    server = ops_world.server
    acct = server.create_account(10)
    server.cli("signature", "add", acct.username, "短信宝")
    server.wait_synced()
    assert sms(server, acct, "13900000002", "【短信宝】vip", "vip") == "55"
    ops = operator(ops_world)
    page = f"/ops/accounts/{acct.username}"
    assert post(ops, f"{page}/products", {"product": "vip"}, page).startswith("ok")
    server.wait_synced()
    me = signed_in(server.url, "customer", acct.username, acct.password)
    assert 'value="vip"' in me.get("/console/send").text
    assert sms(server, acct, "13900000002", "【短信宝】vip", "vip") == "0"


def test_words_imported_from_a_file_are_found_by_the_tester(ops_world: Ops) -> None:
    ops = operator(ops_world)
    answer = ops.post(
        "/ops/words/import",
        data={"csrf": token(ops, "/ops/words"), "category": "fraud"},
        files={"file": ("words.txt", "\ufeff刷单返利\n\n  高额回报 \n".encode(), "text/plain")},
        headers={"Referer": str(ops.base_url.join("/ops/words"))},
    )
    assert answer.status_code == 303
    listed = ops.get("/ops/words").text
    assert "刷单返利" in listed
    assert "高额回报" in listed
    ops_world.server.wait_synced()
    tested = ops.post(
        "/ops/words/test", data={"csrf": token(ops, "/ops/words"), "text": "加入我们，高额回报"}
    )
    assert "高额回报" in tested.text
    assert 'class="flash error"' in tested.text
    bad = ops.post(
        "/ops/words/import",
        data={"csrf": token(ops, "/ops/words")},
        files={"file": ("w.bin", b"\xff\xfe\x00bad", "application/octet-stream")},
    )
    assert bad.status_code == 303


def test_an_unmatched_reply_is_assigned_and_the_customer_sees_it(ops_world: Ops) -> None:
    server = ops_world.server
    acct = server.create_account(10)
    server.cli("simulate", "reply", "13911112222", "who is this")
    ops = operator(ops_world)
    listed = ops.get("/ops/replies").text
    found = re.search(r"/ops/replies/(\d+)/assign", listed)
    assert found
    assert "who is this" in listed
    mo_id = found.group(1)
    flash = post(ops, f"/ops/replies/{mo_id}/assign", {"account": acct.username}, "/ops/replies")
    assert flash.startswith("ok")
    assert f"/ops/replies/{mo_id}/assign" not in ops.get("/ops/replies").text
    me = signed_in(server.url, "customer", acct.username, acct.password)
    assert "who is this" in me.get("/console/replies").text
    again = post(ops, f"/ops/replies/{mo_id}/assign", {"account": acct.username}, "/ops/replies")
    assert again.startswith("error")  # it has an owner now
    audit = ops.get("/ops/audit").text
    row = f"<td>operator:{ops_world.name}</td><td>mo.assign</td><td>mo:{mo_id}</td>"
    assert row in audit
    assert audit.count(f"<td>mo:{mo_id}</td>") == 1  # audited once, by the change itself


def test_the_mo_url_refuses_private_addresses_and_the_allowlist_is_edited(
    ops_world: Ops,
) -> None:
    server = ops_world.server
    acct = server.create_account(10)
    me = signed_in(server.url, "customer", acct.username, acct.password)
    page = "/console/settings"
    refused = post(me, f"{page}/mo-url", {"url": "http://10.1.2.3/mo"}, page)
    assert refused.startswith("error")
    assert "10.1.2.3" not in me.get(page).text.split('id="url"')[1].split(">")[0]
    assert post(me, f"{page}/allow-ip", {"cidr": "203.0.113.0/24 198.51.100.7"}, page).startswith(
        "ok"
    )
    shown = allowlist(me.get(page).text)
    assert "203.0.113.0/24" in shown
    assert "198.51.100.7/32" in shown
    assert post(me, f"{page}/allow-ip", {"cidr": "not-an-ip"}, page).startswith("error")
    assert post(me, f"{page}/disallow-ip", {"cidr": "203.0.113.0/24"}, page).startswith("ok")
    assert "203.0.113.0/24" not in allowlist(me.get(page).text)
    # The API now admits only 198.51.100.7: this client is refused (43), the console is not.
    server.wait_synced()
    assert sms(server, acct, "13900000003", "【x】hi").startswith("43")
    assert me.get("/console").status_code == 200
