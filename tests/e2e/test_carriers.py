"""Carriers configured while the server runs: `smsgate carrier add/set/remove` and
`product set --carriers` take effect within seconds, with no restart, and the live
state the server reports is what `carrier show` prints.

The carriers here are extra simulators (the SMPP, CMPP and upstream HTTP kinds have end-to-end
tests of their own against real peers).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.e2e.send_support import SEND_ENV, Gate, Numbers, content, settle, v1_page
from tests.e2e.server_support import Account, ServerProcess
from tests.support.waiting import wait_for

PICKED_UP = 2.0  # a running server follows a carrier change within this long (design)


@pytest.fixture(scope="module")
def shared_server_env() -> dict[str, str]:
    return dict(SEND_ENV)


def send_through(gate: Gate, acct: Account, phone: str, product: str) -> dict[str, Any]:
    assert gate.sms(acct, [phone], content("路由"), g=product) == "0"
    [newest] = v1_page(gate.client, gate.server, acct, limit=1)["items"]
    [message] = settle(gate.client, gate.server, acct, batch=newest["batch_id"])
    return message


def show(server: ServerProcess, name: str) -> dict[str, Any]:
    return json.loads(server.cli("carrier", "show", name, "--json").stdout)


def test_a_carrier_added_while_serving_takes_a_products_messages(
    shared_server: ServerProcess, gate: Gate, acct: Account, numbers: Numbers
) -> None:
    server = shared_server
    server.cli("carrier", "add", "sim-b", "--kind", "simulator", "--opt", "delay_seconds=0.05")
    server.cli("product", "add", "route-b", "Routed", "--carriers", "sim-b")
    added = time.monotonic()
    assert wait_for(lambda: show(server, "sim-b")["live"], timeout=PICKED_UP + 3)
    assert time.monotonic() - added < PICKED_UP + 3
    message = send_through(gate, acct, numbers.one(), "route-b")
    assert (message["state"], message["carrier"]) == ("delivered", "sim-b")
    [live] = show(server, "sim-b")["live"].values()
    assert live["state"] == "ready"
    assert live["submitted"] >= 1


def test_network_limited_carrier_falls_back_and_a_disabled_one_is_skipped(
    shared_server: ServerProcess, gate: Gate, acct: Account, numbers: Numbers
) -> None:
    server = shared_server
    server.cli("carrier", "add", "unicom-only", "--kind", "simulator", "--networks", "cucc")
    server.cli("carrier", "add", "any-net", "--kind", "simulator")
    server.cli("product", "add", "route-c", "Failover", "--carriers", "unicom-only,any-net")
    assert wait_for(lambda: show(server, "any-net")["live"], timeout=PICKED_UP + 3)
    mobile = numbers.one()  # 139...: China Mobile, which unicom-only does not serve
    assert send_through(gate, acct, mobile, "route-c")["carrier"] == "any-net"
    unicom = "130" + mobile[3:]
    assert send_through(gate, acct, unicom, "route-c")["carrier"] == "unicom-only"

    server.cli("carrier", "set", "unicom-only", "--disable")
    assert wait_for(lambda: show(server, "unicom-only")["live"], lambda live: not live, 12) == {}
    other = "130" + numbers.one()[3:]
    assert send_through(gate, acct, other, "route-c")["carrier"] == "any-net"


def test_secrets_are_never_printed_and_removal_checks_routes(
    shared_server: ServerProcess,
) -> None:
    server = shared_server
    server.cli("carrier", "add", "sim-s", "--kind", "simulator")
    shown = server.cli("carrier", "show", "sim-s").stdout
    assert "simulator" in shown
    refused = server.cli("product", "set", "general", "--carriers", "no-such", check=False)
    assert refused.returncode == 1
    assert "no carrier no-such" in refused.stderr
    server.cli("product", "add", "route-s", "S", "--carriers", "sim-s")
    busy = server.cli("carrier", "remove", "sim-s", check=False)
    assert busy.returncode == 1
    assert "route-s" in busy.stderr
    server.cli("product", "set", "route-s", "--carriers", "simulator")
    server.cli("carrier", "remove", "sim-s")
    assert "sim-s" not in server.cli("carrier", "list").stdout


def test_operators_read_carriers_and_live_state_over_v1(
    shared_server: ServerProcess, gate: Gate
) -> None:
    server = shared_server
    server.cli("operator", "create", "ops-v1", "--password", "carrier-watch-1")
    server.cli(
        "carrier", "add", "up-v1", "--kind", "smsbao", "--url", "http://192.0.2.1:9",
        "--username", "upstream", "--password", "hunter22-secret",
    )  # fmt: skip
    url = f"{server.url}/v1/carriers"
    auth = ("ops-v1", "carrier-watch-1")

    listed = gate.client.get(url, auth=auth, timeout=20)
    assert listed.status_code == 200, listed.text
    by_name = {c["name"]: c for c in listed.json()}
    assert by_name["simulator"]["live"]  # the running node reports its state
    assert all("state" in node for node in by_name["simulator"]["live"].values())
    assert by_name["up-v1"]["kind"] == "smsbao"
    assert by_name["up-v1"]["options"]["password"] == "set"
    assert "hunter22-secret" not in listed.text

    wrong = gate.client.get(url, auth=("ops-v1", "not-the-password"), timeout=20)
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"].startswith("Basic")
    assert wrong.json()["code"] == "unauthorized"
    acct = server.create_account(balance=10)
    as_customer = gate.client.get(
        url, headers={"authorization": f"Bearer {acct.api_key}"}, timeout=20
    )
    assert as_customer.status_code == 401
    assert gate.client.get(url, timeout=20).status_code == 401
