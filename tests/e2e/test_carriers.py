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
