"""The console's access rules over plain HTTP, against the real server: every page
refuses an anonymous visitor; a customer reaches neither another account's data nor
the operator's pages; a form without the session's CSRF token changes nothing; failed
sign-ins lock out; the session cookie is signed, HttpOnly and SameSite."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import NamedTuple

import httpx
import pytest

from smsgate.console import customer, entry, inbox, ops
from tests.e2e.console_support import close_clients, csrf_of, new_client, signed_in, token
from tests.e2e.server_support import Account, ServerProcess, unique_name

OPERATOR_PASSWORD = "operator-pw-1"


class World(NamedTuple):
    server: ServerProcess
    alice: Account
    bob: Account
    operator: str
    bob_message: int


@pytest.fixture(scope="module")
def world(shared_server: ServerProcess) -> World:
    alice = shared_server.create_account(1000)
    bob = shared_server.create_account(1000)
    operator = unique_name("op")
    shared_server.cli_many(
        ("operator", "create", operator, "--password", OPERATOR_PASSWORD),
        ("signature", "add", bob.username, "短信宝"),
    )
    shared_server.wait_synced()
    sent = httpx.get(
        f"{shared_server.url}/sms",
        params={
            "u": bob.username,
            "p": bob.api_key,
            "m": "13800138001",
            "c": "【短信宝】bob's secret 42",
        },
        trust_env=False,
    )
    assert sent.text == "0", sent.text
    listed = httpx.get(
        f"{shared_server.url}/v1/messages",
        headers={"Authorization": f"Bearer {bob.api_key}"},
        trust_env=False,
    ).json()
    return World(shared_server, alice, bob, operator, listed["items"][0]["id"])


@pytest.fixture(autouse=True)
def _clients() -> Iterator[None]:
    yield
    close_clients()


def concrete(path: str, name: str) -> str:
    return path.replace("{id}", "1").replace("{name}", name)


PROTECTED = [
    (path, method) for module in (customer, inbox, ops) for path, method, _handler in module.ROUTES
]


def test_every_page_refuses_an_anonymous_visitor(world: World) -> None:
    anonymous = new_client(world.server.url)
    token_ = csrf_of(anonymous.get("/signin").text)  # a valid anonymous session and token
    for path, method in PROTECTED:
        url = concrete(path, world.alice.username)
        if method == "GET":
            answer = anonymous.get(url)
            assert answer.status_code == 303, url
            assert answer.headers["location"].startswith("/signin?next="), url
        else:
            answer = anonymous.post(url, data={"csrf": token_})
            assert answer.status_code == 401, url
        assert 'id="balance"' not in answer.text  # nothing of the account's shown


def test_a_customer_cannot_open_operator_pages(world: World) -> None:
    before = world.server.show(world.bob.username)["balance"]
    alice = signed_in(world.server.url, "customer", world.alice.username, world.alice.password)
    csrf = token(alice, "/console")
    for path, method in [(p, m) for p, m, _h in ops.ROUTES]:
        url = concrete(path, world.bob.username)
        answer = (
            alice.get(url)
            if method == "GET"
            else alice.post(url, data={"csrf": csrf, "amount": "5"})
        )
        assert answer.status_code == 403, url
    assert world.server.show(world.bob.username)["balance"] == before  # no top-up happened


def test_an_operator_is_not_a_customer(world: World) -> None:
    operator = signed_in(world.server.url, "operator", world.operator, OPERATOR_PASSWORD)
    assert operator.get("/console").status_code == 403
    assert operator.get("/ops").status_code == 200


def test_a_customer_cannot_read_another_accounts_message(world: World) -> None:
    alice = signed_in(world.server.url, "customer", world.alice.username, world.alice.password)
    detail = alice.get(f"/console/messages/{world.bob_message}")
    assert detail.status_code == 404
    assert "secret 42" not in detail.text
    listed = alice.get("/console/messages", params={"phone": "13800138001"})
    assert listed.status_code == 200
    assert "secret 42" not in listed.text
    # The owner sees it.
    bob = signed_in(world.server.url, "customer", world.bob.username, world.bob.password)
    assert "secret 42" in bob.get(f"/console/messages/{world.bob_message}").text


def test_content_search_finds_only_the_callers_own_messages(world: World) -> None:
    """Search by content in the console and the JSON API: the account's own messages only,
    and the text taken as written (``%`` and ``_`` match themselves, a NUL finds nothing)."""
    bob = signed_in(world.server.url, "customer", world.bob.username, world.bob.password)
    alice = signed_in(world.server.url, "customer", world.alice.username, world.alice.password)
    assert "secret 42" in bob.get("/console/messages", params={"text": "secret 4"}).text
    for text in ("secret 43", "secret%", "secret_42", "secret\x0042"):
        assert "secret 42" not in bob.get("/console/messages", params={"text": text}).text
    assert "secret 42" not in alice.get("/console/messages", params={"text": "secret"}).text

    def api(key: str, text: str) -> httpx.Response:
        return httpx.get(
            f"{world.server.url}/v1/messages",
            params={"text": text},
            headers={"Authorization": f"Bearer {key}"},
            trust_env=False,
        )

    assert [m["id"] for m in api(world.bob.api_key, "secret 4").json()["items"]] == [
        world.bob_message
    ]
    assert api(world.bob.api_key, "50%").json()["items"] == []
    assert api(world.alice.api_key, "secret").json()["items"] == []
    assert api(world.bob.api_key, "a\x00b").status_code == 422


def test_a_customer_cannot_revoke_another_accounts_key(world: World) -> None:
    bob = signed_in(world.server.url, "customer", world.bob.username, world.bob.password)
    ids = re.findall(r"/console/keys/(\d+)/revoke", bob.get("/console/keys").text)
    assert ids
    alice = signed_in(world.server.url, "customer", world.alice.username, world.alice.password)
    answer = alice.post(
        f"/console/keys/{ids[0]}/revoke", data={"csrf": token(alice, "/console/keys")}
    )
    assert answer.status_code == 303
    assert "error" in answer.headers.get("set-cookie", "")  # refused, said on the page
    still = httpx.get(
        f"{world.server.url}/v1/account",
        headers={"Authorization": f"Bearer {world.bob.api_key}"},
        trust_env=False,
    )
    assert still.status_code == 200


def test_forms_without_the_csrf_token_are_refused(world: World) -> None:
    alice = signed_in(world.server.url, "customer", world.alice.username, world.alice.password)
    before = alice.get("/console/keys").text.count("/revoke")
    for data in ({}, {"csrf": "forged"}):
        answer = alice.post("/console/keys", data=data)
        assert answer.status_code == 403
        assert "new-key" not in answer.text
    assert alice.get("/console/keys").text.count("/revoke") == before

    operator = signed_in(world.server.url, "operator", world.operator, OPERATOR_PASSWORD)
    answer = operator.post(f"/ops/accounts/{world.alice.username}/topup", data={"amount": "7"})
    assert answer.status_code == 403
    assert world.server.show(world.alice.username)["balance"] == "1000"

    # Another session's token is no good either.
    other = new_client(world.server.url)
    stolen = csrf_of(other.get("/signin").text)
    answer = alice.post("/console/keys", data={"csrf": stolen})
    assert answer.status_code == 403


def test_the_sign_in_form_needs_its_token_too(world: World) -> None:
    client = new_client(world.server.url)
    client.get("/signin")
    answer = client.post(
        "/signin",
        data={
            "role": "customer",
            "username": world.alice.username,
            "password": world.alice.password,
        },
    )
    assert answer.status_code == 403
    assert client.get("/console", follow_redirects=False).status_code == 303


def test_the_session_cookie_is_signed_httponly_and_samesite(world: World) -> None:
    client = new_client(world.server.url)
    first = client.get("/signin")
    cookie = first.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    alice = signed_in(world.server.url, "customer", world.alice.username, world.alice.password)
    value = alice.cookies["smsgate_console"]
    body, mac = value.split(".")
    # Claiming to be the operator with the signature of another payload: anonymous.
    forged = new_client(world.server.url)
    forged.cookies.set("smsgate_console", f"{body}x.{mac}")
    assert forged.get("/console", follow_redirects=False).status_code == 303
    assert entry.HOME["operator"] == "/ops"


def test_repeated_failures_lock_the_sign_in(world: World) -> None:
    victim = world.server.create_account(0)
    client = new_client(world.server.url)
    world.server.wait_synced()
    for _ in range(10):  # login_failures_per_account (default)
        csrf = csrf_of(client.get("/signin").text)
        wrong = client.post(
            "/signin",
            data={
                "csrf": csrf,
                "role": "customer",
                "username": victim.username,
                "password": "nope-nope",
            },
        )
        assert wrong.status_code == 401
    csrf = csrf_of(client.get("/signin").text)
    right = client.post(
        "/signin",
        data={
            "csrf": csrf,
            "role": "customer",
            "username": victim.username,
            "password": victim.password,
        },
    )
    assert right.status_code == 401  # locked out, even with the right password
    # The API's password check shares the lock (same name, same source).
    md5 = hashlib.md5(victim.password.encode()).hexdigest()
    api = httpx.get(
        f"{world.server.url}/query", params={"u": victim.username, "p": md5}, trust_env=False
    )
    assert api.text.startswith("30")


def test_language_by_accept_language_and_by_the_switch(world: World) -> None:
    client = new_client(world.server.url)
    assert "登录" in client.get("/signin").text  # Chinese by default
    english = client.get("/signin", headers={"Accept-Language": "en-US,en;q=0.9"}).text
    assert "Sign in" in english
    assert "登录" not in english
    switched = client.get("/lang", params={"to": "en", "next": "/signin"})
    assert switched.status_code == 303
    assert switched.headers["location"] == "/signin"
    assert "Sign in" in client.get("/signin").text
    evil = client.get("/lang", params={"to": "zh", "next": "//evil.example/"})
    assert evil.headers["location"] == "/"


def test_a_bad_filter_is_a_clear_400_and_a_missing_message_a_404(world: World) -> None:
    alice = signed_in(world.server.url, "customer", world.alice.username, world.alice.password)
    bad = alice.get("/console/messages", params={"state": "nonsense"})
    assert bad.status_code == 400
    assert "nonsense" in bad.text
    assert alice.get("/console/messages", params={"since": "yesterday"}).status_code == 400
    assert alice.get("/console/messages/999999999").status_code == 404
    assert alice.get("/console/messages/abc").status_code == 404


def test_pages_may_not_be_framed_and_load_only_from_this_site(world: World) -> None:
    alice = signed_in(world.server.url, "customer", world.alice.username, world.alice.password)
    for path in ("/signin", "/console", "/console/settings"):
        headers = alice.get(path).headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "default-src 'self'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["cache-control"] == "no-store"
