"""The Python SDK (`smsgate.client`) against the real `smsgate serve` process.

Every method of ``Client`` and ``AsyncClient`` (each test that takes ``clients`` runs with
both), with a password (hashed to MD5 by the SDK) and with an ApiKey; every error type,
each raised from a real server answer; the JSON API (messages, message, replies) with its
filters and cursors; what a timeout does to a send (never sent again) as opposed to a read
(tried again); and the reply receiver (``ReplyReceiver`` under uvicorn, ``handle_push`` behind
the standard library's HTTP server) driven by smsgate's own push worker on a shortened
schedule (1.2 s, 2.4 s, 3.6 s).

Accounts come from send_support's in-process provisioner (signature 【短信宝】); everything
an operator does in a test (disable, allowlist, products, words, MO URL, simulated user
replies) goes through the real CLI.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from smsgate.client import (
    AccountInactive,
    ApiError,
    AsyncClient,
    BadCredentials,
    BadPhone,
    BadProduct,
    BadSignature,
    Balance,
    Client,
    ContentTooLong,
    FrequencyLimit,
    InsufficientBalance,
    IpNotAllowed,
    OptedOut,
    ParamsIncomplete,
    QueryTooFrequent,
    Reply,
    ReplyReceiver,
    SendOutcomeUnknown,
    SensitiveWord,
    TemplateRequired,
    TransportError,
    plan_batches,
)
from tests.e2e.accounts_support import AccountPool, Provisioner
from tests.e2e.client_support import (
    FORWARD,
    HOLD,
    KINDS,
    SWALLOW,
    Clients,
    Valve,
    serve_asgi,
    serve_handle_push,
)
from tests.e2e.send_support import (
    FINAL_STATES,
    SEND_ENV,
    Gate,
    Numbers,
    books,
    content,
    sized,
    stored_messages,
)
from tests.e2e.server_support import Account, ServerProcess
from tests.support.waiting import wait_for

FAIL_SUFFIX = "4444"  # the simulator reports numbers ending so `undelivered`
OFFSETS = (0.0, 1.2, 2.4, 3.6)  # SMSGATE_PUSH_RETRY_MINUTES=0.02,0.04,0.06
TOLERANCE = 0.6
WORD = "代开发票"
# What must cross the wire intact: Chinese, an emoji (two UCS-2 units), and the characters
# URL encoding is about; 1 unit once signed and numbered.
TRICKY = "客户端 a+b&c=d 100% #1 😀 %E4%BD%A0"
REPLY_TEXT = "好的，收到😀👍🏽 a&b=c+d 100% %E4%BD%A0 ?#\n第二行"

CLIENT_ENV = {
    **SEND_ENV,
    "SMSGATE_QUERY_INTERVAL_SECONDS": "60",  # SMSBao's once a minute (44)
    "SMSGATE_SIMULATOR_FAIL_SUFFIX": FAIL_SUFFIX,
    "SMSGATE_PUSH_RETRY_MINUTES": "0.02,0.04,0.06",
    "SMSGATE_PUSH_TIMEOUT_SECONDS": "2",
}


@pytest.fixture(scope="module")
def shared_server_env() -> dict[str, str]:
    return dict(CLIENT_ENV)


@pytest.fixture(scope="module")
def number_avoid() -> tuple[str, ...]:
    return (FAIL_SUFFIX,)


@pytest.fixture(params=KINDS)
def clients(request: pytest.FixtureRequest, shared_server: ServerProcess) -> Iterator[Clients]:
    """Makes Client or AsyncClient objects (by the parameter) for the shared server."""
    made = Clients(request.param, shared_server.url)
    yield made
    made.close()


@dataclass(frozen=True)
class World:
    """The module's operator set-up, made with the CLI (see `world`)."""

    steady: Account  # 1000 units; gets refused requests
    broke: Account  # 0 units
    disabled: Account  # `account set --disable`
    walled: Account  # allowlist: 10.9.9.9 only
    opted: Account  # its number `opted_phone` replied TD
    opted_phone: str
    pool: AccountPool


@pytest.fixture(scope="module")
def world(
    shared_server: ServerProcess, provisioner: Provisioner, pool: AccountPool, numbers: Numbers
) -> World:
    """Products (`tpl` template-required, `double` price 2), a sensitive word, and accounts
    in every state a refusal needs, all set up with the CLI."""
    steady, disabled, walled, opted = (pool.take() for _ in range(4))
    broke = provisioner.account(balance=0)
    opted_phone = numbers.one()
    with httpx.Client(trust_env=False, timeout=10) as http:
        assert Gate(shared_server, http).sms(opted, opted_phone, content()) == "0"
    shared_server.cli_many(
        ["product", "add", "tpl", "验证码专用", "--template-required"],
        ["product", "add", "double", "Premium", "--price", "2"],
        ["words", "add", WORD],
        ["account", "set", disabled.username, "--disable"],
        ["account", "allow-ip", walled.username, "10.9.9.9"],
        ["simulate", "reply", opted_phone, "TD"],
    )
    shared_server.wait_synced()
    return World(steady, broke, disabled, walled, opted, opted_phone, pool)


def api(server: ServerProcess, account: Account) -> httpx.Client:
    """The JSON API with plain httpx, for what the SDK has no method for."""
    return httpx.Client(
        base_url=server.url,
        headers={"Authorization": f"Bearer {account.api_key}"},
        timeout=10,
        trust_env=False,
    )


# -- sending ------------------------------------------------------------------------------


@pytest.mark.parametrize("creds", ["password", "api_key"])
def test_send_one_several_and_a_product_then_the_exact_balance(
    shared_server: ServerProcess,
    world: World,
    clients: Clients,
    pool: AccountPool,
    numbers: Numbers,
    creds: str,
) -> None:
    acct = pool.take()
    sms = clients(acct, creds)
    a, b, c, d = numbers.many(4)
    texts = [content(TRICKY) for _ in range(4)]
    assert sms.send(a, texts[0]) is None
    sms.send([b, c], texts[1])
    sms.send(f" {c}，{d} ", texts[2])  # one string, a full-width comma, spaces
    sms.send(d, texts[3], product="double")  # price 2
    rows = stored_messages(shared_server, acct.username)
    assert sorted((r["phone"], r["content"], r["cost"]) for r in rows) == sorted(
        [
            (a, texts[0], 1),
            (b, texts[1], 1),
            (c, texts[1], 1),
            (c, texts[2], 1),
            (d, texts[2], 1),
            (d, texts[3], 2),
        ]
    )
    assert sms.balance() == Balance(sent=7, remaining=993)
    after = books(shared_server, acct.username)
    assert (after.balance, after.sent, after.ledger_sum, after.batches) == (993, 7, 993, 4)
    with pytest.raises(QueryTooFrequent) as info:
        sms.balance()  # within the minute
    assert (info.value.code, info.value.message_zh) == ("44", "查询过于频繁")


def test_content_with_a_percent_encoded_link_is_stored_as_sent(
    shared_server: ServerProcess, clients: Clients, pool: AccountPool, numbers: Numbers
) -> None:
    acct = pool.take()
    sms = clients(acct)
    text = content("搜索结果 https://example.com/s?q=%E4%BD%A0%E5%A5%BD ")
    sms.send(numbers.one(), text)
    [row] = stored_messages(shared_server, acct.username)
    assert row["content"] == text


def test_send_international_and_voice_code(
    shared_server: ServerProcess, clients: Clients, pool: AccountPool, numbers: Numbers
) -> None:
    acct = pool.take()
    sms = clients(acct, "password")
    a, b = numbers.many(2)
    t1, t2 = content("Your code is 4564 😀"), content("Hello & welcome +1")
    sms.send_international("+14155552671", t1)
    sms.send_international(["+447911123456", "+14155552671"], t2)
    sms.send_voice_code(a, "123456")
    sms.send_voice_code(b, 4321)
    rows = stored_messages(shared_server, acct.username)
    assert sorted((r["phone"], r["kind"], r["content"]) for r in rows) == sorted(
        [
            ("+14155552671", "intl", t1),
            ("+447911123456", "intl", t2),
            ("+14155552671", "intl", t2),
            (a, "voice", "123456"),
            (b, "voice", "4321"),
        ]
    )
    assert books(shared_server, acct.username).balance == 1000 - 5


def test_send_bulk_250_numbers_in_three_requests(
    shared_server: ServerProcess,
    world: World,
    clients: Clients,
    pool: AccountPool,
    numbers: Numbers,
) -> None:
    acct = pool.take()
    sms = clients(acct)
    phones = numbers.many(250)
    text = content("周末特惠")
    results = sms.send_bulk([*phones, *phones[:7]], text)  # repeats are dropped
    assert [(r.index, len(r.phones), r.ok, r.error) for r in results] == [
        (0, 99, True, None),
        (1, 99, True, None),
        (2, 52, True, None),
    ]
    assert [p for r in results for p in r.phones] == phones
    rows = stored_messages(shared_server, acct.username)
    assert Counter(r["phone"] for r in rows) == Counter(phones)  # each exactly once
    assert {r["content"] for r in rows} == {text}
    by_batch: dict[int, set[str]] = defaultdict(set)
    for row in rows:
        by_batch[row["batch_id"]].add(row["phone"])
    assert sorted(by_batch.values(), key=len, reverse=True) == [set(r.phones) for r in results]
    b = books(shared_server, acct.username)
    assert (b.balance, b.sent, b.ledger_sum, b.batches) == (750, 250, 750, 3)

    # One bad number refuses its own request only; the others go out and are charged.
    mixed = numbers.many(249)
    mixed.insert(150, "14012345678")
    results = sms.send_bulk(mixed, content("周末特惠"))
    assert [len(r.phones) for r in results] == [99, 99, 52]
    assert [r.ok for r in results] == [True, False, True]
    assert isinstance(results[1].error, BadPhone)
    assert results[1].error.code == "51"
    assert not results[1].outcome_unknown
    b = books(shared_server, acct.username)
    assert (b.balance, b.sent, b.batches) == (750 - 151, 250 + 151, 5)

    # stop_on_error: nothing after the first failed request is tried
    stopped = sms.send_bulk(["14012345678", *numbers.many(120)], content(), stop_on_error=True)
    assert len(stopped) == 1
    assert isinstance(stopped[0].error, BadPhone)
    assert books(shared_server, acct.username) == b

    # the two halves, as the CLI uses them: plan, then one request per batch
    text = content()
    planned = plan_batches(numbers.many(120), batch_size=60)
    assert [(p.index, len(p.phones)) for p in planned] == [(0, 60), (1, 60)]
    done = [sms.send_batch(batch, text, product="double") for batch in planned]
    assert [(r.index, r.phones, r.ok) for r in done] == [(p.index, p.phones, True) for p in planned]
    b = books(shared_server, acct.username)
    assert (b.balance, b.sent, b.batches) == (599 - 240, 401 + 240, 7)  # price 2


async def test_async_client_in_a_running_loop_sends_concurrently(
    shared_server: ServerProcess, pool: AccountPool, numbers: Numbers
) -> None:
    """AsyncClient as an asyncio application uses it: 30 sends at once on one client."""
    acct = pool.take()
    sends = [(numbers.one(), content(TRICKY)) for _ in range(30)]
    async with AsyncClient(acct.username, api_key=acct.api_key, base_url=shared_server.url) as sms:
        assert await asyncio.gather(*(sms.send(p, c) for p, c in sends)) == [None] * 30
        assert await sms.balance() == Balance(sent=30, remaining=970)
    rows = stored_messages(shared_server, acct.username)
    assert sorted((r["phone"], r["content"]) for r in rows) == sorted(sends)


# -- the JSON API ---------------------------------------------------------------------------


def _settled(sms: Any, count: int) -> list[dict[str, Any]]:
    """All the account's messages once `count` of them are in a final state."""
    found: list[dict[str, Any]] = []

    def done() -> bool:
        found[:] = sms.messages(limit=500)
        return len(found) == count and all(m["state"] in FINAL_STATES for m in found)

    assert wait_for(done, timeout=10), f"not within 10 s: {count} messages in a final state"
    return found


def test_messages_filters_and_cursor_pagination(
    clients: Clients, pool: AccountPool, numbers: Numbers
) -> None:
    acct = pool.take()
    sms = clients(acct)
    a, b, c = numbers.many(3)
    dead = numbers.ending(FAIL_SUFFIX)
    to_a = [content(f"第{i}条") for i in range(3)]
    for text in to_a:
        sms.send(a, text)
    sms.send([b, c], content("两个号码"))
    sms.send(dead, content("不会送达"))
    everything = _settled(sms, 6)

    # newest first; pages of 4 then 2, the cursor of the last page is None
    ids = [m["id"] for m in everything]
    assert ids == sorted(ids, reverse=True)
    first = sms.messages(limit=4)
    assert [m["id"] for m in first] == ids[:4]
    assert first.next_cursor is not None
    second = sms.messages(limit=4, cursor=first.next_cursor)
    assert [m["id"] for m in second] == ids[4:]
    assert second.next_cursor is None

    assert [m["content"] for m in sms.messages(phone=a)] == to_a[::-1]
    batch = everything[1]["batch_id"]  # the [b, c] request
    assert sorted(m["phone"] for m in sms.messages(batch=batch)) == sorted([b, c])
    [undelivered] = sms.messages(state="undelivered")
    assert undelivered["phone"] == dead
    assert len(sms.messages(state="delivered")) == 5

    # since (inclusive) and until (exclusive) split the list at any message's time
    pivot = datetime.fromisoformat(everything[2]["created_at"]).replace(tzinfo=UTC)
    since = sms.messages(since=pivot)
    before = sms.messages(until=pivot.isoformat())
    assert everything[2]["id"] in {m["id"] for m in since}
    assert sorted(m["id"] for m in since + before) == sorted(ids)
    assert sms.messages(since=datetime.now(UTC) + timedelta(hours=1)) == []

    # one message by id: the same as in the list
    assert sms.message(undelivered["id"]) == undelivered
    assert sms.message(str(ids[-1]))["content"] == to_a[0]
    with pytest.raises(TypeError):
        sms.messages(colour="red")


def test_json_api_errors(
    shared_server: ServerProcess,
    world: World,
    clients: Clients,
    pool: AccountPool,
    numbers: Numbers,
) -> None:
    mine, theirs = pool.take(), pool.take()
    other = clients(theirs)
    other.send(numbers.one(), content())
    [their_message] = other.messages()

    with pytest.raises(BadCredentials) as wrong_key:
        clients(mine.username, api_key="0" * 32).messages()
    assert (wrong_key.value.code, wrong_key.value.status_code) == ("30", 401)
    assert wrong_key.value.message_zh == "错误密码"
    with pytest.raises(BadCredentials):
        clients(mine.username, api_key="0" * 32).replies()

    # the account's state and allowlist apply to the JSON API as to the SMSBao wire
    with pytest.raises(AccountInactive) as inactive:
        clients(world.disabled).messages()
    assert (inactive.value.code, inactive.value.status_code) == ("42", 403)
    with pytest.raises(IpNotAllowed) as walled:
        clients(world.walled).replies()
    assert (walled.value.code, walled.value.status_code) == ("43", 403)

    sms = clients(mine)
    for missing in (their_message["id"], 10**9):
        with pytest.raises(ApiError) as not_found:
            sms.message(missing)
        assert type(not_found.value) is ApiError
        assert (not_found.value.code, not_found.value.status_code) == ("notfound", 404)
        assert f"no message {missing}" in not_found.value.message
    assert sms.messages() == []  # the other account's message is not listed either

    with pytest.raises(ValueError, match="api_key"):
        clients(mine, "password").messages()  # the JSON API takes an ApiKey only


def test_replies_after_simulated_replies(
    shared_server: ServerProcess, clients: Clients, pool: AccountPool, numbers: Numbers
) -> None:
    acct = pool.take()
    sms = clients(acct)
    a, b = numbers.many(2)
    sms.send([a, b], content())
    started = datetime.now(UTC) - timedelta(seconds=5)
    shared_server.cli("simulate", "reply", a, REPLY_TEXT)
    shared_server.cli("simulate", "reply", b, "退订")

    both = sms.replies()
    assert [(r["phone"], r["content"]) for r in both] == [(b, "退订"), (a, REPLY_TEXT)]
    assert [(r["matched_by"], r["optout"]) for r in both] == [("recent", True), ("recent", False)]
    [only_a] = sms.replies(phone=a)
    assert only_a == both[1]
    page = sms.replies(limit=1)
    assert [r["id"] for r in page] == [both[0]["id"]]
    rest = sms.replies(limit=1, cursor=page.next_cursor)
    assert [r["id"] for r in rest] == [both[1]["id"]]
    assert rest.next_cursor is None
    assert len(sms.replies(since=started)) == 2
    assert sms.replies(since=datetime.now(UTC) + timedelta(hours=1)) == []
    # 退订 opted b out: once the server has seen that, a send to b is refused with 57
    shared_server.wait_synced()
    with pytest.raises(OptedOut):
        sms.send(b, content())


# -- every error type, from a real answer ----------------------------------------------------

Make = Callable[[World, Clients, Numbers], tuple[Account | None, Callable[[], object]]]


def _same_content_twice(w: World, c: Clients, n: Numbers) -> tuple[Account, Callable[[], None]]:
    sms, phone, text = c(w.steady), n.one(), content()
    sms.send(phone, text)
    return w.steady, lambda: sms.send(phone, text)


def _balance_twice(w: World, c: Clients, n: Numbers) -> tuple[Account, Callable[[], object]]:
    acct = w.pool.take()
    sms = c(acct, "password")
    assert sms.balance() == Balance(0, 1000)
    return acct, sms.balance


ERRORS: dict[str, tuple[type[ApiError], Make]] = {
    "-1 empty content": (
        ParamsIncomplete,
        lambda w, c, n: (w.steady, lambda: c(w.steady).send(n.one(), "")),
    ),
    "30 wrong password": (
        BadCredentials,
        lambda w, c, n: (
            w.steady,
            lambda: c(w.steady.username, password="not-the-password").send(n.one(), content()),
        ),
    ),
    "30 wrong ApiKey": (
        BadCredentials,
        lambda w, c, n: (
            w.steady,
            lambda: c(w.steady.username, api_key="A" * 32).send(n.one(), content()),
        ),
    ),
    "30 no account": (  # the server answers 30, not 40: usernames cannot be found by asking
        BadCredentials,
        lambda w, c, n: (
            None,
            lambda: c(f"nobody_{uuid.uuid4().hex[:8]}", password="pw").send(n.one(), content()),
        ),
    ),
    "41 balance": (
        InsufficientBalance,
        lambda w, c, n: (w.broke, lambda: c(w.broke).send(n.one(), content())),
    ),
    "42 disabled": (
        AccountInactive,
        lambda w, c, n: (w.disabled, lambda: c(w.disabled, "password").send(n.one(), content())),
    ),
    "43 allowlist": (
        IpNotAllowed,
        lambda w, c, n: (w.walled, lambda: c(w.walled, "password").send(n.one(), content())),
    ),
    "44 balance twice": (QueryTooFrequent, _balance_twice),
    "50 sensitive word": (
        SensitiveWord,
        lambda w, c, n: (w.steady, lambda: c(w.steady).send(n.one(), content(f"发票{WORD}"))),
    ),
    "51 bad number": (
        BadPhone,
        lambda w, c, n: (w.steady, lambda: c(w.steady).send([n.one(), "14012345678"], content())),
    ),
    "52 no signature": (
        BadSignature,
        lambda w, c, n: (w.steady, lambda: c(w.steady).send(n.one(), "您的验证码是4564")),
    ),
    "53 same content": (FrequencyLimit, _same_content_twice),
    "54 template": (
        TemplateRequired,
        lambda w, c, n: (w.steady, lambda: c(w.steady).send(n.one(), content(), product="tpl")),
    ),
    "55 product": (
        BadProduct,
        lambda w, c, n: (w.steady, lambda: c(w.steady).send(n.one(), content(), product="nosuch")),
    ),
    "56 too long": (
        ContentTooLong,
        lambda w, c, n: (w.steady, lambda: c(w.steady).send(n.one(), sized(501))),
    ),
    "57 opted out": (
        OptedOut,
        lambda w, c, n: (w.opted, lambda: c(w.opted, "password").send(w.opted_phone, content())),
    ),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_every_error_answer_raises_its_type(
    shared_server: ServerProcess, world: World, clients: Clients, numbers: Numbers, case: str
) -> None:
    cls, make = ERRORS[case]
    account, call = make(world, clients, numbers)
    before = books(shared_server, account.username) if account else None
    with pytest.raises(cls) as info:
        call()
    exc, row = info.value, cls.error_code
    assert row is not None
    assert type(exc) is cls
    assert (exc.code, exc.message, exc.message_zh) == (row.wire, row.message, row.message_zh)
    assert (exc.body, exc.status_code, exc.detail) == (row.wire, 200, "")
    assert str(exc) == f"{row.wire}: {row.message} ({row.message_zh})"
    if account is not None:  # a refused request sends nothing and charges nothing
        assert books(shared_server, account.username) == before


def test_a_send_that_times_out_is_never_sent_again_but_a_read_is_retried(
    shared_server: ServerProcess, clients: Clients, pool: AccountPool, numbers: Numbers
) -> None:
    acct = pool.take()
    valve = Valve(shared_server.url)
    try:
        sms = clients(acct, base_url=valve.url, timeout=0.5, retries=2, retry_backoff=0.01)
        phone, text = numbers.one(), content()
        valve.plan(SWALLOW)  # the server gets the send; its answer never comes back
        with pytest.raises(SendOutcomeUnknown) as info:
            sms.send(phone, text)
        assert info.value.phones == (phone,)
        assert [r.action for r in valve.requests] == [SWALLOW]  # not sent again
        rows = stored_messages(shared_server, acct.username)
        assert [(r["phone"], r["content"]) for r in rows] == [(phone, text)]  # it was accepted

        valve.plan(HOLD)  # a balance query that times out is not retried either
        with pytest.raises(TransportError) as lost:
            sms.balance()
        assert not isinstance(lost.value, SendOutcomeUnknown)
        assert isinstance(lost.value.__cause__, httpx.ReadTimeout)
        assert len(valve.requests) == 2

        valve.plan(HOLD)  # reading the message log is: once more, and it works
        assert [m["phone"] for m in sms.messages()] == [phone]
        assert [r.action for r in valve.requests[2:]] == [HOLD, FORWARD]
        assert sms.balance() == Balance(sent=1, remaining=999)  # the held query never arrived
    finally:
        valve.close()


# -- the reply receiver, driven by smsgate's push worker --------------------------------------


def _reply(server: ServerProcess, account: Account, reply_id: int) -> dict[str, Any]:
    with api(server, account) as http:
        response = http.get(f"/v1/replies/{reply_id}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _mo_setup(server: ServerProcess, acct: Account, phone: str, url: str) -> None:
    """The account sends to `phone` (so the user's reply finds it) and sets its MO URL."""
    with Client(acct.username, api_key=acct.api_key, base_url=server.url) as sms:
        sms.send(phone, content())
    server.cli("account", "set", acct.username, "--mo-url", url)


def _offsets(times: list[float]) -> list[float]:
    return [round(t - times[0], 2) for t in times]


def test_receiver_gets_the_exact_text_and_answers_0(
    shared_server: ServerProcess, pool: AccountPool, numbers: Numbers
) -> None:
    acct, phone = pool.take(), numbers.one()
    got: list[Reply] = []
    with serve_asgi(ReplyReceiver(got.append)) as url:
        _mo_setup(shared_server, acct, phone, f"{url}/sms/replies?token=t%2B1")
        shared_server.cli("simulate", "reply", phone, REPLY_TEXT)
        assert wait_for(lambda: got, timeout=5), "not within 5 s: the push"
        with Client(acct.username, api_key=acct.api_key, base_url=shared_server.url) as sms:
            assert wait_for(lambda: sms.replies(state="succeeded"), timeout=3), (
                "not within 3 s: the push succeeded"
            )
            [item] = sms.replies(phone=phone)
    [reply] = got
    assert (reply.phone, reply.content) == (phone, REPLY_TEXT)
    assert reply.params["token"] == "t+1"  # the URL's own query comes along
    assert item["content"] == REPLY_TEXT
    assert (item["push"]["state"], item["push"]["attempts"]) == ("succeeded", 1)
    attempts = _reply(shared_server, acct, item["id"])["attempts"]
    assert [(a["ok"], a["status"]) for a in attempts] == [(True, 200)]
    assert all("body" not in a for a in attempts)  # the receiver's answer stays private


def test_receiver_whose_callback_raises_answers_an_error_and_the_push_fails_after_4(
    shared_server: ServerProcess, pool: AccountPool, numbers: Numbers
) -> None:
    acct, phone = pool.take(), numbers.one()
    calls: list[tuple[float, str]] = []

    async def broken(reply: Reply) -> None:
        calls.append((time.time(), reply.content))
        raise RuntimeError("the application's database is down")

    with serve_asgi(ReplyReceiver(broken)) as url:
        probe = httpx.get(url, params={"m": phone, "c": "x"}, trust_env=False)
        assert (probe.status_code, probe.text) == (500, "error")
        assert httpx.get(url, params={"m": phone}, trust_env=False).status_code == 400
        calls.clear()
        _mo_setup(shared_server, acct, phone, f"{url}/mo")
        shared_server.cli("simulate", "reply", phone, REPLY_TEXT)
        with Client(acct.username, api_key=acct.api_key, base_url=shared_server.url) as sms:
            assert wait_for(lambda: sms.replies(state="failed"), timeout=OFFSETS[-1] + 5), (
                f"not within {OFFSETS[-1] + 5} s: the push failed"
            )
            time.sleep(1.0)  # and nothing comes after the fourth attempt
            [item] = sms.replies(phone=phone)
    assert [c for _, c in calls] == [REPLY_TEXT] * 4
    offsets = _offsets([t for t, _ in calls])
    assert all(abs(o - e) <= TOLERANCE for o, e in zip(offsets, OFFSETS, strict=True)), offsets
    assert (item["push"]["state"], item["push"]["attempts"]) == ("failed", 4)
    assert item["push"]["last_error"] == "HTTP 500"
    attempts = _reply(shared_server, acct, item["id"])["attempts"]
    assert [(a["ok"], a["status"]) for a in attempts] == [(False, 500)] * 4


def test_handle_push_whose_callback_fails_once_then_succeeds(
    shared_server: ServerProcess, pool: AccountPool, numbers: Numbers
) -> None:
    acct, phone = pool.take(), numbers.one()
    seen: list[str] = []

    def flaky(reply: Reply) -> None:
        seen.append(reply.content)
        if len(seen) == 1:
            raise ConnectionError("queue not reachable")

    with serve_handle_push(flaky) as url:
        _mo_setup(shared_server, acct, phone, f"{url}/mo")
        shared_server.cli("simulate", "reply", phone, REPLY_TEXT)
        with Client(acct.username, api_key=acct.api_key, base_url=shared_server.url) as sms:
            assert wait_for(lambda: sms.replies(state="succeeded"), timeout=OFFSETS[1] + 4), (
                f"not within {OFFSETS[1] + 4} s: the second attempt"
            )
            [item] = sms.replies(phone=phone)
    assert seen == [REPLY_TEXT, REPLY_TEXT]
    assert (item["push"]["state"], item["push"]["attempts"]) == ("succeeded", 2)
    attempts = _reply(shared_server, acct, item["id"])["attempts"]
    assert [(a["ok"], a["status"], a["error"]) for a in attempts] == [
        (False, 200, "HTTP 200 with an answer other than 0 (5 characters)"),
        (True, 200, None),
    ]
