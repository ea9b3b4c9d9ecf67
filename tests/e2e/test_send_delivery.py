"""After `0`: accepted messages go through the simulator carrier to a final state.

The simulator's outcome is scripted by the number's last digits (settings): FAIL ->
`undelivered`, REJECT -> `failed` at submit and refunded, THROTTLE -> refused once with
"slow down", then delivered. States are read through the JSON API (/v1/messages, Bearer
ApiKey) and `smsgate messages`; money through the database and /query.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.e2e.accounts_support import AccountPool, Provisioner
from tests.e2e.send_support import (
    SEND_ENV,
    Gate,
    Numbers,
    bearer,
    books,
    content,
    settle,
    sized,
    v1_messages,
    v1_page,
)
from tests.e2e.server_support import Account, ServerProcess

FAIL, REJECT, THROTTLE = "0404", "0500", "0429"
THROTTLE_RETRY = 1.0  # the simulator's retry_after for a throttled submit


@pytest.fixture(scope="module")
def shared_server_env() -> dict[str, str]:
    return {
        **SEND_ENV,
        "SMSGATE_SIMULATOR_FAIL_SUFFIX": FAIL,
        "SMSGATE_SIMULATOR_REJECT_SUFFIX": REJECT,
        "SMSGATE_SIMULATOR_THROTTLE_SUFFIX": THROTTLE,
    }


@pytest.fixture(scope="module")
def number_avoid() -> tuple[str, ...]:
    return (FAIL, REJECT, THROTTLE)


def when(value: str | None) -> datetime:
    assert value is not None
    return datetime.fromisoformat(value)


def send_and_settle(
    gate: Gate, acct: Account, phones: list[str], text: str | None = None
) -> list[dict[str, Any]]:
    """Send one request; wait until each of its messages is final; them, newest first."""
    assert gate.sms(acct, phones, text or content()) == "0"
    [newest] = v1_page(gate.client, gate.server, acct, limit=1)["items"]
    return settle(gate.client, gate.server, acct, batch=newest["batch_id"])


def by_phone(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["phone"]: m for m in items}


# -- states ---------------------------------------------------------------------------


def test_messages_reach_delivered(
    shared_server: ServerProcess, gate: Gate, acct: Account, numbers: Numbers
) -> None:
    phones = numbers.many(3)
    text = content("送达")
    items = send_and_settle(gate, acct, phones, text)
    assert sorted(m["phone"] for m in items) == sorted(phones)
    for m in items:
        assert m["state"] == "delivered", m
        assert (m["content"], m["carrier"], m["kind"], m["units"], m["cost"]) == (
            text,
            "simulator",
            "sms",
            1,
            1,
        )
        assert m["carrier_ref"]
        assert m["error"] is None
        assert when(m["created_at"]) <= when(m["submitted_at"]) <= when(m["done_at"])
    # the operator's view
    listed = shared_server.cli(
        "messages", "--account", acct.username, "--state", "delivered", env={"COLUMNS": "200"}
    ).stdout
    for phone in phones:
        assert any(phone in line and "delivered" in line for line in listed.splitlines()), listed
    none = shared_server.cli("messages", "--account", acct.username, "--state", "undelivered")
    assert "no messages" in none.stdout


def test_fail_suffix_is_undelivered_and_stays_charged(
    shared_server: ServerProcess, gate: Gate, acct: Account, numbers: Numbers
) -> None:
    good, dead = numbers.one(), numbers.ending(FAIL)
    items = by_phone(send_and_settle(gate, acct, [good, dead]))
    assert items[good]["state"] == "delivered"
    assert items[dead]["state"] == "undelivered"
    assert items[dead]["error"]
    assert items[dead]["carrier_ref"]  # it was submitted: the carrier took it
    # the carrier took both: both stay charged, no refund
    assert [kind for _, kind, _ in shared_server.ledger(acct.username)] == ["topup", "charge"]
    b = books(shared_server, acct.username)
    assert (b.balance, b.sent, b.ledger_sum) == (998, 2, 998)


def test_reject_suffix_fails_and_is_refunded(
    shared_server: ServerProcess, gate: Gate, acct: Account, numbers: Numbers
) -> None:
    good, refused = numbers.one(), numbers.ending(REJECT)
    items = by_phone(send_and_settle(gate, acct, [good, refused], sized(71)))  # 2 units each
    assert items[good]["state"] == "delivered"
    failed = items[refused]
    assert failed["state"] == "failed"
    assert failed["carrier_ref"] is None
    assert failed["error"]
    assert failed["cost"] == 2
    batch = failed["batch_id"]
    assert shared_server.ledger(acct.username) == [
        (1000, "topup", "opening balance"),
        (-4, "charge", f"batch:{batch}"),
        (2, "refund", f"message:{failed['id']}"),
    ]
    b = books(shared_server, acct.username)
    assert (b.balance, b.sent, b.ledger_sum, b.charged) == (998, 2, 998, 2)
    assert gate.query(acct) == (2, 998)
    shown = shared_server.show(acct.username)
    assert (shown["balance"], shown["sent"]) == ("998", "2")


def test_a_refund_is_made_once(
    shared_server: ServerProcess, gate: Gate, acct: Account, numbers: Numbers
) -> None:
    phones = [numbers.ending(REJECT) for _ in range(5)]
    items = send_and_settle(gate, acct, phones)
    assert {m["state"] for m in items} == {"failed"}
    time.sleep(0.6)  # a few more dispatcher rounds: nothing is refunded twice
    kinds = [kind for _, kind, _ in shared_server.ledger(acct.username)]
    assert kinds == ["topup", "charge"] + ["refund"] * 5
    b = books(shared_server, acct.username)
    assert (b.balance, b.sent, b.ledger_sum) == (1000, 0, 1000)


def test_throttled_number_is_retried_and_delivered(
    gate: Gate, acct: Account, numbers: Numbers
) -> None:
    slow = numbers.ending(THROTTLE)
    [m] = send_and_settle(gate, acct, [slow])
    assert m["state"] == "delivered"
    # it really was throttled: submitted only after the carrier's retry time
    waited = (when(m["submitted_at"]) - when(m["created_at"])).total_seconds()
    assert waited >= THROTTLE_RETRY * 0.9, waited


def test_every_outcome_in_one_request(
    shared_server: ServerProcess, gate: Gate, acct: Account, numbers: Numbers
) -> None:
    phones = {
        "delivered": numbers.one(),
        "undelivered": numbers.ending(FAIL),
        "failed": numbers.ending(REJECT),
        "throttled": numbers.ending(THROTTLE),
    }
    items = by_phone(send_and_settle(gate, acct, list(phones.values())))
    assert {name: items[phone]["state"] for name, phone in phones.items()} == {
        "delivered": "delivered",
        "undelivered": "undelivered",
        "failed": "failed",
        "throttled": "delivered",
    }
    b = books(shared_server, acct.username)
    assert (b.balance, b.sent, b.ledger_sum) == (997, 3, 997)


# -- the JSON API's message list --------------------------------------------------------


@dataclass(frozen=True)
class Traffic:
    """Three settled requests of one account: A to n1,n2,n3; B to n1 and a dead number;
    C to n4. Six messages; the tests below only read them."""

    acct: Account
    n: tuple[str, str, str, str]
    dead: str
    a: list[dict[str, Any]]
    b: list[dict[str, Any]]
    c: list[dict[str, Any]]


@pytest.fixture(scope="module")
def traffic(gate: Gate, pool: AccountPool, numbers: Numbers) -> Traffic:
    acct = pool.take()
    n1, n2, n3, n4 = numbers.many(4)
    dead = numbers.ending(FAIL)
    a = send_and_settle(gate, acct, [n1, n2, n3])
    b = send_and_settle(gate, acct, [n1, dead])
    c = send_and_settle(gate, acct, [n4])
    return Traffic(acct, (n1, n2, n3, n4), dead, a, b, c)


def ids(items: list[dict[str, Any]]) -> list[int]:
    return [m["id"] for m in items]


def test_v1_filters(gate: Gate, traffic: Traffic) -> None:
    acct = traffic.acct
    n1, n2, n3, _ = traffic.n
    everything = v1_messages(gate.client, gate.server, acct)
    assert len(everything) == 6
    assert ids(everything) == sorted(ids(everything), reverse=True)  # newest first

    def listed(**params: Any) -> list[dict[str, Any]]:
        return v1_messages(gate.client, gate.server, acct, **params)

    assert sorted(m["phone"] for m in listed(phone=n1)) == [n1, n1]
    assert [m["phone"] for m in listed(phone=traffic.dead)] == [traffic.dead]
    assert [m["phone"] for m in listed(state="undelivered")] == [traffic.dead]
    assert len(listed(state="delivered")) == 5
    assert listed(state="failed") == []
    batch_a = traffic.a[0]["batch_id"]
    assert sorted(m["phone"] for m in listed(batch=batch_a)) == sorted([n1, n2, n3])
    assert {m["batch_id"] for m in listed(batch=batch_a)} == {batch_a}
    batch_b = traffic.b[0]["batch_id"]
    assert [m["phone"] for m in listed(batch=batch_b, phone=n1)] == [n1]
    assert listed(batch=batch_b, state="delivered", phone=traffic.dead) == []
    assert listed(phone=n2, state="delivered") == [m for m in everything if m["phone"] == n2]


@pytest.mark.parametrize("limit", [1, 2, 4, 5, 6, 7])
def test_v1_pagination(gate: Gate, traffic: Traffic, limit: int) -> None:
    acct = traffic.acct
    expected = ids(v1_page(gate.client, gate.server, acct, limit=500)["items"])
    assert len(expected) == 6
    pages: list[list[int]] = []
    cursor = None
    while True:
        extra: dict[str, str] = {"cursor": cursor} if cursor else {}
        page = v1_page(gate.client, gate.server, acct, limit=limit, **extra)
        pages.append(ids(page["items"]))
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 10
    assert [i for page in pages for i in page] == expected  # all, in order, none twice
    assert [len(p) for p in pages[:-1]] == [limit] * (len(pages) - 1)
    assert len(pages) == -(-6 // limit)  # no empty last page


def test_v1_pagination_with_a_filter(gate: Gate, traffic: Traffic) -> None:
    acct = traffic.acct
    first = v1_page(gate.client, gate.server, acct, state="delivered", limit=3)
    assert len(first["items"]) == 3
    assert first["next_cursor"] is not None
    rest = v1_page(
        gate.client, gate.server, acct, state="delivered", limit=3, cursor=first["next_cursor"]
    )
    assert len(rest["items"]) == 2
    assert rest["next_cursor"] is None
    assert {m["state"] for m in first["items"] + rest["items"]} == {"delivered"}


def test_v1_message_of_another_account_is_404(
    shared_server: ServerProcess, gate: Gate, pool: AccountPool, numbers: Numbers
) -> None:
    owner, stranger = pool.take(), pool.take()
    [mine] = send_and_settle(gate, owner, [numbers.one()])
    url = f"{shared_server.url}/v1/messages/{mine['id']}"
    own = gate.client.get(url, headers=bearer(owner))
    assert own.status_code == 200
    assert own.json() == mine
    other = gate.client.get(url, headers=bearer(stranger))
    assert other.status_code == 404
    assert set(other.json()) == {"code", "message", "detail"}
    assert mine["phone"] not in other.text
    assert mine["content"] not in other.text
    assert v1_messages(gate.client, shared_server, stranger) == []
    missing = gate.client.get(f"{shared_server.url}/v1/messages/999999999", headers=bearer(owner))
    assert missing.status_code == 404
    assert gate.client.get(url).status_code == 401
    assert gate.client.get(url, headers={"authorization": "Bearer " + "0" * 32}).status_code == 401


def test_delivery_and_books_after_many_messages(
    shared_server: ServerProcess, gate: Gate, acct: Account, numbers: Numbers
) -> None:
    phones = numbers.many(90) + [numbers.ending(REJECT) for _ in range(9)]
    items = send_and_settle(gate, acct, phones)
    states = [m["state"] for m in items]
    assert (states.count("delivered"), states.count("failed")) == (90, 9)
    b = books(shared_server, acct.username)
    assert (b.balance, b.sent, b.ledger_sum, b.messages) == (910, 90, 910, 99)


# -- a report faster than the record of its submit ----------------------------------------


@pytest.mark.parametrize(
    "server_env", [{**SEND_ENV, "SMSGATE_SIMULATOR_DELAY_SECONDS": "0"}], indirect=True
)
def test_immediate_delivery_reports_are_not_lost(server: ServerProcess) -> None:
    """With no simulator delay the report can overtake the record of its own submit (a
    real SMSC's receipt can too): it must still settle the message, not be dropped."""
    provisioner = Provisioner(server)
    try:
        acct = provisioner.account()
    finally:
        provisioner.close()
    numbers = Numbers()
    with httpx.Client(timeout=10, trust_env=False) as client:
        gate = Gate(server, client)
        for _ in range(3):
            assert gate.sms(acct, numbers.many(20), content()) == "0"
        items = settle(client, server, acct, timeout=3)
    states = [m["state"] for m in items]
    assert states == ["delivered"] * 60, {s: states.count(s) for s in set(states)}
