"""The send path over real HTTP against `smsgate serve`: /sms, /wsms and /voice.

Every code a real request can get, the order of the checks (the first failure decides),
bulk limits, billing units, and the wire details real SMSBao clients depend on. Every
refused request is checked to leave the account's books exactly as they were: balance,
`sent`, the ledger and the message count (read from the test database).

One server per module (SQLite, and PostgreSQL when SMSGATE_TEST_DATABASE_URL is set);
each test uses accounts of its own, or a module account it never changes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from urllib.parse import quote, quote_plus, urlencode

import httpx
import pytest
import sqlalchemy as sa

from tests.e2e.accounts_support import SIGNATURE, AccountPool, Provisioner
from tests.e2e.send_support import (
    SEND_ENV,
    SIG,
    TEXT,
    Gate,
    Numbers,
    add_optout,
    books,
    content,
    query_string,
    raw_request,
    sized,
    stored_messages,
    v1_messages,
    wire,
)
from tests.e2e.server_support import SEEN_WITHIN, Account, ServerProcess, md5
from tests.support.waiting import wait_for

WORD_LATIN = "spamlink"
WORD_CJK = "代开发票"
TEMPLATE_PENDING_RE = re.compile(r"template #(\d+) is pending")


@pytest.fixture(scope="module")
def shared_server_env() -> dict[str, str]:
    return dict(SEND_ENV)


@pytest.fixture(scope="module")
def steady(pool: AccountPool) -> Account:
    """A module account that only ever gets refused requests (balance 1000)."""
    return pool.take()


@pytest.fixture(scope="module")
def catalogue(shared_server: ServerProcess) -> None:
    """The module's products and sensitive words, added with the CLI."""
    shared_server.cli_many(
        ["product", "add", "vip", "VIP 专享", "--private"],
        ["product", "add", "tpl", "验证码专用", "--template-required"],
        ["product", "add", "double", "Premium", "--price", "2"],
        ["product", "add", "slow", "Capped"],
        ["words", "add", WORD_LATIN, WORD_CJK],
    )
    shared_server.wait_synced()


def refused(gate: Gate, acct: Account, expected: str, send: Callable[[], str]) -> None:
    """`send()` answers `expected`, and the account's books did not move."""
    before = books(gate.server, acct.username)
    assert send() == expected
    assert books(gate.server, acct.username) == before


def charged(gate: Gate, acct: Account, cost: int, n_messages: int, send: Callable[[], str]) -> None:
    """`send()` answers 0, and exactly `cost` units and `n_messages` messages were booked."""
    before = books(gate.server, acct.username)
    assert send() == "0"
    after = books(gate.server, acct.username)
    assert after.balance == before.balance - cost
    assert after.sent == before.sent + cost
    assert after.ledger_sum == after.balance
    assert after.messages == before.messages + n_messages
    assert after.batches == before.batches + 1


# -- -1: parameters incomplete ----------------------------------------------------------


@pytest.mark.parametrize("how", ["missing", "empty"])
@pytest.mark.parametrize("name", ["u", "p", "m", "c"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_missing_or_empty_parameter_is_minus_1(
    gate: Gate, steady: Account, numbers: Numbers, method: str, name: str, how: str
) -> None:
    params = {"u": steady.username, "p": steady.api_key, "m": numbers.one(), "c": content()}
    if how == "missing":
        del params[name]
    else:
        params[name] = ""
    send = (
        (lambda: gate.get("/sms", params))
        if method == "GET"
        else (lambda: gate.post("/sms", data=params))
    )
    refused(gate, steady, "-1", send)


# -- 40, 30, 42, 43: who is calling ------------------------------------------------------


def test_unknown_account_answers_like_a_wrong_password(gate: Gate, numbers: Numbers) -> None:
    params = {"u": "nobody_here_at_all", "p": md5("whatever"), "m": numbers.one(), "c": content()}
    assert gate.get("/sms", params) == "30"  # not 40: usernames cannot be found by asking
    assert gate.post("/sms", data=params) == "30"


@pytest.mark.parametrize(
    "credential",
    [
        pytest.param(lambda a: md5("not-the-password"), id="md5-of-another-password"),
        pytest.param(lambda a: a.password, id="plain-password"),
        pytest.param(lambda a: "0" * 32, id="32-zeros"),
        pytest.param(
            lambda a: a.api_key[:-1] + ("0" if a.api_key[-1] != "0" else "1"), id="key-typo"
        ),
        pytest.param(lambda a: md5(a.password)[:31], id="md5-truncated"),
    ],
)
def test_wrong_password_or_apikey_is_30(
    gate: Gate, steady: Account, numbers: Numbers, credential: Callable[[Account], str]
) -> None:
    refused(
        gate,
        steady,
        "30",
        lambda: gate.sms(steady, numbers.one(), content(), p=credential(steady)),
    )


def test_account_set_up_with_the_cli_sends(
    shared_server: ServerProcess, gate: Gate, numbers: Numbers
) -> None:
    """The operator's way: `account create` and `signature add`, then send."""
    acct = shared_server.create_account(balance=5)
    number, c = numbers.one(), content()
    refused(gate, acct, "52", lambda: gate.sms(acct, number, c, p=acct.md5))  # no signature yet
    shared_server.cli("signature", "add", acct.username, SIGNATURE)
    shared_server.wait_synced()
    charged(gate, acct, 1, 1, lambda: gate.sms(acct, number, c, p=acct.md5))
    shown = shared_server.show(acct.username)
    assert (shown["balance"], shown["sent"], shown["signatures"]) == ("4", "1", SIG)


def test_md5_in_any_case_and_apikey_are_accepted(
    gate: Gate, acct: Account, numbers: Numbers
) -> None:
    for p in (acct.md5, acct.md5.upper(), acct.api_key):
        charged(gate, acct, 1, 1, partial(gate.sms, acct, numbers.one(), content(), p=p))


def test_disabled_or_expired_account_is_42(
    shared_server: ServerProcess, gate: Gate, pool: AccountPool, numbers: Numbers
) -> None:
    disabled, expired = pool.take(), pool.take()
    shared_server.cli_many(
        ["account", "set", disabled.username, "--disable"],
        ["account", "set", expired.username, "--expires", "2020-01-01"],
    )
    shared_server.wait_synced()
    for a in (disabled, expired):
        for p in (a.md5, a.api_key):
            refused(gate, a, "42", partial(gate.sms, a, numbers.one(), content(), p=p))
    # it was the status: enabled again, the same account sends
    shared_server.cli("account", "set", disabled.username, "--enable")
    shared_server.wait_synced()
    charged(gate, disabled, 1, 1, lambda: gate.sms(disabled, numbers.one(), content()))


def test_ip_outside_allowlist_is_43(
    shared_server: ServerProcess, gate: Gate, acct: Account, numbers: Numbers
) -> None:
    shared_server.cli("account", "allow-ip", acct.username, "10.1.2.0/24", "127.0.0.2")
    shared_server.wait_synced()
    refused(gate, acct, "43", lambda: gate.sms(acct, numbers.one(), content()))
    # no trusted proxy is configured: a forwarded-for header is not believed
    spoofed = _params(acct, numbers.one(), content())

    def claiming(headers: dict[str, str]) -> str:
        return wire(gate.client.get(f"{shared_server.url}/sms", params=spoofed, headers=headers))

    for header in ({"x-forwarded-for": "127.0.0.2"}, {"x-real-ip": "10.1.2.3"}):
        refused(gate, acct, "43", partial(claiming, header))
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(transport=transport, timeout=10, trust_env=False) as from_allowed:
        allowed = Gate(shared_server, from_allowed)
        charged(gate, acct, 1, 1, lambda: allowed.sms(acct, numbers.one(), content()))


# -- 55: product ---------------------------------------------------------------------------


def test_unknown_product_is_55(gate: Gate, acct: Account, numbers: Numbers) -> None:
    refused(gate, acct, "55", lambda: gate.sms(acct, numbers.one(), content(), g="nosuch"))
    # absent, empty and the default product's id all mean the general product
    charged(gate, acct, 1, 1, lambda: gate.sms(acct, numbers.one(), content(), g=""))
    charged(gate, acct, 1, 1, lambda: gate.sms(acct, numbers.one(), content(), g="general"))


def test_private_product_needs_a_grant(
    shared_server: ServerProcess, gate: Gate, pool: AccountPool, numbers: Numbers, catalogue: None
) -> None:
    granted, other = pool.take(), pool.take()
    refused(gate, granted, "55", lambda: gate.sms(granted, numbers.one(), content(), g="vip"))
    shared_server.cli("account", "products", granted.username, "vip")
    shared_server.wait_synced()
    charged(gate, granted, 1, 1, lambda: gate.sms(granted, numbers.one(), content(), g="vip"))
    refused(gate, other, "55", lambda: gate.sms(other, numbers.one(), content(), g="vip"))


# -- 51: numbers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        "1390012345",  # 10 digits
        "139001234567",  # 12 digits
        "12345678901",  # no such mobile prefix
        "14012345678",  # 140 is not a mobile range
        "01012345678",  # a Beijing landline
        "1390012abcd",
        "+1 4155552671",  # an international number on /sms
        "139-0012-3456",
    ],
)
def test_invalid_number_is_51(gate: Gate, steady: Account, numbers: Numbers, bad: str) -> None:
    refused(gate, steady, "51", lambda: gate.sms(steady, bad, content()))
    # one bad number refuses the whole request
    refused(gate, steady, "51", lambda: gate.sms(steady, [numbers.one(), bad], content()))


def test_99_distinct_numbers_are_accepted_and_charged_per_unit(
    shared_server: ServerProcess, gate: Gate, acct: Account, numbers: Numbers
) -> None:
    bulk = numbers.many(99)
    text = sized(71)  # 2 units each
    charged(gate, acct, 99 * 2, 99, lambda: gate.sms(acct, bulk, text))
    rows = stored_messages(shared_server, acct.username)
    assert sorted(r["phone"] for r in rows) == sorted(bulk)
    assert {(r["content"], r["units"], r["cost"]) for r in rows} == {(text, 2, 2)}
    assert len({r["batch_id"] for r in rows}) == 1


def test_100_distinct_numbers_is_51_and_nothing_charged(
    gate: Gate, steady: Account, numbers: Numbers
) -> None:
    refused(gate, steady, "51", lambda: gate.sms(steady, numbers.many(100), content()))
    # also with POST (the usual way to send a long list)
    params = {
        "u": steady.username,
        "p": steady.api_key,
        "m": ",".join(numbers.many(100)),
        "c": content(),
    }
    refused(gate, steady, "51", lambda: gate.post("/sms", data=params))


def test_duplicates_are_removed_before_counting(
    shared_server: ServerProcess, gate: Gate, acct: Account, numbers: Numbers
) -> None:
    distinct = numbers.many(99)
    # 120 entries: the 99 numbers, then 21 of them again, written in other accepted forms
    prefixes = ["+86", "86", "0086", " "]
    repeats = [f"{prefixes[i % 4]}{n}" for i, n in enumerate(distinct[:21])]
    entries = distinct + repeats
    assert len(entries) == 120
    charged(
        gate,
        acct,
        99,
        99,
        lambda: gate.post(
            "/sms",
            data={"u": acct.username, "p": acct.api_key, "m": ",".join(entries), "c": content()},
        ),
    )
    assert sorted(r["phone"] for r in stored_messages(shared_server, acct.username)) == sorted(
        distinct
    )


# -- 56: length -----------------------------------------------------------------------------


def test_501_characters_is_56(gate: Gate, steady: Account, numbers: Numbers) -> None:
    refused(gate, steady, "56", lambda: gate.sms(steady, numbers.one(), sized(501)))
    # characters outside the BMP count 2: 5 + 4 + 246 x 2 = 501
    emoji = f"{SIG}1234" + "😀" * 246
    assert len(emoji) == 255
    refused(gate, steady, "56", lambda: gate.sms(steady, numbers.one(), emoji))


@pytest.mark.parametrize("control", ["\x00", "\x01", "\x1b", "\x7f", "\x85"])
def test_control_characters_in_content_are_minus_1(
    gate: Gate, steady: Account, numbers: Numbers, control: str
) -> None:
    """A NUL used to reach PostgreSQL and fail there (500, and the whole group commit);
    now every control character but tab and newlines is a malformed parameter."""
    for where in (content(control), f"{control}{content()}"):
        refused(gate, steady, "-1", lambda c=where: gate.sms(steady, numbers.one(), c))
        refused(
            gate, steady, "-1", lambda c=where: gate.post("/sms", data=_form(steady, numbers, c))
        )


def _form(acct: Account, numbers: Numbers, c: str) -> dict[str, str]:
    return {"u": acct.username, "p": acct.api_key, "m": numbers.one(), "c": c}


def test_tab_and_newlines_are_content(gate: Gate, acct: Account, numbers: Numbers) -> None:
    charged(gate, acct, 1, 1, lambda: gate.sms(acct, numbers.one(), content("第一行\r\n\t第二行")))


def test_500_characters_is_accepted(gate: Gate, acct: Account, numbers: Numbers) -> None:
    charged(gate, acct, 8, 1, lambda: gate.sms(acct, numbers.one(), sized(500)))  # ceil(500/67)


# -- 52: signature ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("您的验证码是{n}，5分钟内有效", id="no-signature"),
        pytest.param("【别人家的公司】您的验证码是{n}", id="unregistered"),
        pytest.param("【短信】您的验证码是{n}", id="two-characters"),
        pytest.param("【短信宝您的验证码是{n}", id="unclosed"),
        pytest.param("您的【短信宝】验证码是{n}", id="in-the-middle"),
        pytest.param("【一二三四五六七八九十一】验证码{n}", id="eleven-characters"),
    ],
)
def test_bad_signature_is_52(gate: Gate, steady: Account, numbers: Numbers, text: str) -> None:
    c = text.format(n=content()[-5:])
    refused(gate, steady, "52", lambda: gate.sms(steady, numbers.one(), c))


def test_signature_at_the_end_is_accepted(gate: Gate, acct: Account, numbers: Numbers) -> None:
    c = f"您的验证码是{content()[-5:]}{SIG}"
    charged(gate, acct, 1, 1, lambda: gate.sms(acct, numbers.one(), c))


# -- 50: sensitive words ----------------------------------------------------------------


@pytest.mark.parametrize(
    "disguise",
    [
        WORD_LATIN,
        WORD_LATIN.upper(),
        "ｓｐａｍｌｉｎｋ",  # full-width letters
        "ＳＰＡＭ ＬＩＮＫ",
        " ".join(WORD_LATIN),
        WORD_CJK,
        " ".join(WORD_CJK),
        "\u3000".join(WORD_CJK),  # full-width spaces
        "*".join(WORD_CJK),
    ],
)
def test_sensitive_word_is_50(
    gate: Gate, steady: Account, numbers: Numbers, catalogue: None, disguise: str
) -> None:
    refused(
        gate, steady, "50", lambda: gate.sms(steady, numbers.one(), content(f"点击{disguise}领取"))
    )


def test_part_of_a_word_is_not_sensitive(
    gate: Gate, acct: Account, numbers: Numbers, catalogue: None
) -> None:
    charged(gate, acct, 1, 1, lambda: gate.sms(acct, numbers.one(), content("代开会议通知")))


def test_words_add_is_seen_within_2s(
    shared_server: ServerProcess, gate: Gate, provisioner: Provisioner, numbers: Numbers
) -> None:
    broke = provisioner.account(balance=0)  # every request that passes the checks gets 41
    word = f"禁词{content()[-5:]}"
    c = content(f"这里有{word}")
    refused(gate, broke, "41", lambda: gate.sms(broke, numbers.one(), c))  # not a word yet
    shared_server.cli("words", "add", word)
    added = time.monotonic()
    code = wait_for(lambda: gate.sms(broke, numbers.one(), c), lambda r: r != "41", SEEN_WITHIN)
    assert code == "50"
    assert time.monotonic() - added <= SEEN_WITHIN + 0.3
    assert books(shared_server, broke.username).messages == 0


# -- 54: templates --------------------------------------------------------------------


def _template_id(output: str) -> int:
    match = TEMPLATE_PENDING_RE.search(output)
    assert match, output
    return int(match.group(1))


def test_template_required_product(
    shared_server: ServerProcess, gate: Gate, pool: AccountPool, numbers: Numbers, catalogue: None
) -> None:
    acct, other = pool.take(), pool.take()
    code_text = f"{SIG}您的验证码是{{code}}，5分钟内有效"
    order_text = f"{SIG}您的订单{{no}}已发货"
    matching = f"{SIG}您的验证码是482913，5分钟内有效"
    order_msg = f"{SIG}您的订单A1024已发货"

    def send(c: str, who: Account = acct) -> str:
        return gate.sms(who, numbers.one(), c, g="tpl")

    refused(gate, acct, "54", lambda: send(matching))  # no template at all
    pending, rejected = (
        _template_id(result.stdout)
        for result in shared_server.cli_many(
            ["template", "add", acct.username, code_text, "--product", "tpl"],
            ["template", "add", acct.username, order_text, "--product", "tpl"],
        )
    )
    shared_server.cli("template", "reject", str(rejected))
    shared_server.wait_synced()
    refused(gate, acct, "54", lambda: send(matching))  # pending does not count
    refused(gate, acct, "54", lambda: send(order_msg))  # rejected does not count

    shared_server.cli("template", "approve", str(pending))
    approved = time.monotonic()
    before = books(shared_server, acct.username)
    code = wait_for(lambda: send(matching), lambda r: r != "54", SEEN_WITHIN)
    assert code == "0"
    assert time.monotonic() - approved <= SEEN_WITHIN + 0.3
    assert books(shared_server, acct.username).balance == before.balance - 1

    # what the approved template allows, and nothing else
    charged(gate, acct, 1, 1, lambda: send(f"{SIG}您的验证码是7，5分钟内有效"))
    refused(gate, acct, "54", lambda: send(f"{SIG}您的验证码是123456"))
    refused(gate, acct, "54", lambda: send(f"{SIG}您的验证码是12，5分钟内有效。点击领奖"))
    refused(gate, acct, "54", lambda: send(order_msg))
    # another account's approved template is not this account's
    refused(gate, other, "54", lambda: send(matching, other))
    # a product that does not require templates takes any content
    charged(gate, acct, 1, 1, lambda: gate.sms(acct, numbers.one(), order_msg))
    # rejecting the approved template withdraws it
    shared_server.cli("template", "reject", str(pending))
    code = wait_for(lambda: send(matching), lambda r: r != "0", SEEN_WITHIN)
    assert code == "54"


# -- 57: opt-out ----------------------------------------------------------------------------


def test_number_on_the_optout_list_is_57(
    shared_server: ServerProcess, gate: Gate, pool: AccountPool, numbers: Numbers
) -> None:
    acct, other = pool.take(), pool.take()
    opted, fine = numbers.one(), numbers.one()
    add_optout(shared_server, acct.username, opted)
    refused(gate, acct, "57", lambda: gate.sms(acct, opted, content()))
    refused(gate, acct, "57", lambda: gate.sms(acct, f"+86{opted}", content()))
    refused(gate, acct, "57", lambda: gate.sms(acct, [fine, opted], content()))  # whole request
    charged(gate, acct, 1, 1, lambda: gate.sms(acct, fine, content()))
    # the list is the account's: another account may still send to the number
    charged(gate, other, 1, 1, lambda: gate.sms(other, opted, content()))


def test_td_reply_puts_the_number_on_the_optout_list(
    shared_server: ServerProcess, gate: Gate, acct: Account, numbers: Numbers
) -> None:
    """The real intake: a user replies TD to a message of the account."""
    replier, fine = numbers.many(2)
    charged(gate, acct, 1, 1, lambda: gate.sms(acct, replier, content()))
    result = shared_server.cli("simulate", "reply", replier, "TD", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    code = wait_for(lambda: gate.sms(acct, replier, content()), lambda r: r != "0", SEEN_WITHIN)
    assert code == "57"
    charged(gate, acct, 1, 1, lambda: gate.sms(acct, fine, content()))


# -- 53: frequency ------------------------------------------------------------------------


def test_same_content_to_the_same_number_is_53(gate: Gate, acct: Account, numbers: Numbers) -> None:
    first, second, third = numbers.many(3)
    text = content()
    charged(gate, acct, 1, 1, lambda: gate.sms(acct, first, text))
    refused(gate, acct, "53", lambda: gate.sms(acct, first, text))
    refused(gate, acct, "53", lambda: gate.sms(acct, f"0086{first}", text))
    refused(gate, acct, "53", lambda: gate.sms(acct, [second, first], text))  # whole request
    charged(gate, acct, 1, 1, lambda: gate.sms(acct, second, text))  # another number
    charged(gate, acct, 1, 1, lambda: gate.sms(acct, first, content()))  # other content
    # full-width and half-width twins are the same content
    twin = text.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert twin != text
    refused(gate, acct, "53", lambda: gate.sms(acct, second, twin))
    charged(gate, acct, 1, 1, lambda: gate.sms(acct, third, twin))


def test_per_number_cap_is_53_even_with_new_content(
    shared_server: ServerProcess, gate: Gate, acct: Account, numbers: Numbers
) -> None:
    shared_server.cli("account", "limits", acct.username, "--per-minute", "1")
    shared_server.wait_synced()
    capped, other = numbers.many(2)
    charged(gate, acct, 1, 1, lambda: gate.sms(acct, capped, content()))
    refused(gate, acct, "53", lambda: gate.sms(acct, capped, content()))
    refused(gate, acct, "53", lambda: gate.sms(acct, [other, capped], content()))
    charged(gate, acct, 1, 1, lambda: gate.sms(acct, other, content()))


def test_product_caps_and_daily_account_cap_are_53(
    shared_server: ServerProcess,
    gate: Gate,
    pool: AccountPool,
    numbers: Numbers,
    catalogue: None,
) -> None:
    acct, capped = pool.take(), pool.take()
    shared_server.cli_many(
        ["product", "limits", "slow", "--per-minute", "1"],
        ["account", "limits", capped.username, "--daily-cap", "3"],
    )
    shared_server.wait_synced()
    number = numbers.one()
    charged(gate, acct, 1, 1, lambda: gate.sms(acct, number, content(), g="slow"))
    refused(gate, acct, "53", lambda: gate.sms(acct, number, content(), g="slow"))
    charged(gate, acct, 1, 1, lambda: gate.sms(acct, number, content()))  # general: no cap
    # the account's daily cap counts messages: 4 numbers at once would pass it
    refused(gate, capped, "53", lambda: gate.sms(capped, numbers.many(4), content()))
    charged(gate, capped, 3, 3, lambda: gate.sms(capped, numbers.many(3), content()))
    refused(gate, capped, "53", lambda: gate.sms(capped, numbers.one(), content()))


def test_concurrent_requests_spend_exactly_the_balance(
    shared_server: ServerProcess, gate: Gate, provisioner: Provisioner, numbers: Numbers
) -> None:
    acct = provisioner.account(balance=10)
    phones = numbers.many(25)
    with ThreadPoolExecutor(8) as workers:
        codes = list(workers.map(lambda n: gate.sms(acct, n, content()), phones))
    assert sorted(codes) == ["0"] * 10 + ["41"] * 15
    b = books(shared_server, acct.username)
    assert (b.balance, b.sent, b.ledger_sum, b.messages, b.batches) == (0, 10, 0, 10, 10)
    accepted = sorted(n for n, code in zip(phones, codes, strict=True) if code == "0")
    assert sorted(r["phone"] for r in stored_messages(shared_server, acct.username)) == accepted


def test_concurrent_same_content_to_one_number_is_accepted_once(
    shared_server: ServerProcess, gate: Gate, acct: Account, numbers: Numbers
) -> None:
    number, text = numbers.one(), content()
    with ThreadPoolExecutor(8) as workers:
        codes = list(workers.map(lambda _: gate.sms(acct, number, text), range(12)))
    assert sorted(codes) == ["0"] + ["53"] * 11
    b = books(shared_server, acct.username)
    assert (b.balance, b.sent, b.messages) == (999, 1, 1)


# -- 41: balance ----------------------------------------------------------------------


def test_insufficient_balance_is_41_and_nothing_charged(
    shared_server: ServerProcess,
    gate: Gate,
    provisioner: Provisioner,
    numbers: Numbers,
    catalogue: None,
) -> None:
    acct = provisioner.account(balance=2)
    refused(gate, acct, "41", lambda: gate.sms(acct, numbers.many(3), content()))  # costs 3
    refused(gate, acct, "41", lambda: gate.sms(acct, numbers.one(), sized(135)))  # costs 3
    refused(gate, acct, "41", lambda: gate.sms(acct, numbers.many(2), content(), g="double"))
    charged(gate, acct, 2, 1, lambda: gate.sms(acct, numbers.one(), sized(71)))  # balance 0
    number, text = numbers.one(), content()
    refused(gate, acct, "41", lambda: gate.sms(acct, number, text))
    # a refused request leaves no trace in the frequency state either: after a top-up the
    # very same request is accepted (not 53 for the same content to the same number)
    shared_server.cli("account", "topup", acct.username, "5")
    shared_server.wait_synced()
    charged(gate, acct, 1, 1, lambda: gate.sms(acct, number, text))


# -- the order of checks ----------------------------------------------------------------


@dataclass
class Order:
    """Accounts and numbers set up so that each case fails two (or more) checks."""

    main: Account  # active, balance 1000
    locked: Account  # disabled and allowlisted to 10.9.9.9
    walled: Account  # active, allowlisted to 10.9.9.9
    poor: Account  # balance 0 after the setup send
    opted: str  # on main's opt-out list
    sent_then_opted: tuple[str, str]  # (number, content) sent by main, then opted out
    sent: tuple[str, str]  # (number, content) sent by main
    poor_sent: tuple[str, str]  # (number, content) sent by poor (its last unit)


@pytest.fixture(scope="module")
def order(
    shared_server: ServerProcess,
    gate: Gate,
    pool: AccountPool,
    provisioner: Provisioner,
    numbers: Numbers,
    catalogue: None,
) -> Order:
    main, locked, walled = pool.take(), pool.take(), pool.take()
    [poor] = provisioner.accounts(1, balance=1, sync=False)
    shared_server.cli_many(
        ["account", "allow-ip", locked.username, "10.9.9.9"],
        ["account", "allow-ip", walled.username, "10.9.9.9"],
        ["account", "set", locked.username, "--disable"],
    )
    shared_server.wait_synced()
    sent_then_opted = (numbers.one(), content())
    sent = (numbers.one(), content())
    poor_sent = (numbers.one(), content())
    assert gate.sms(main, *sent_then_opted) == "0"
    assert gate.sms(main, *sent) == "0"
    assert gate.sms(poor, *poor_sent) == "0"
    opted = numbers.one()
    add_optout(shared_server, main.username, opted, sent_then_opted[0])
    return Order(main, locked, walled, poor, opted, sent_then_opted, sent, poor_sent)


BAD_NUMBER = "1390012345"
LONG = 501


def _case(o: Order, numbers: Numbers, case: str) -> tuple[Account, dict[str, str]]:
    """(account whose books must not move, the request) for one ORDER_CASES entry."""
    main = o.main
    good = {"u": main.username, "p": main.api_key, "m": numbers.one(), "c": content()}
    word = content(f"有{WORD_CJK}")
    cases: dict[str, tuple[Account, dict[str, str]]] = {
        # an unknown account answers 30, like a wrong password (no username oracle)
        "-1<30": (main, {"u": "nobody_at_all", "p": md5("x"), "m": numbers.one()}),
        "30<51": (main, {**good, "u": "nobody_at_all", "m": BAD_NUMBER}),
        "30<42": (o.locked, {**good, "u": o.locked.username, "p": md5("wrong password")}),
        "42<43": (o.locked, {**good, "u": o.locked.username, "p": o.locked.api_key}),
        "43<55": (o.walled, {**good, "u": o.walled.username, "p": o.walled.api_key, "g": "x"}),
        "55<51": (main, {**good, "g": "nosuch", "m": BAD_NUMBER}),
        "51<56": (main, {**good, "m": BAD_NUMBER, "c": sized(LONG)}),
        "51<50": (main, {**good, "m": BAD_NUMBER, "c": word}),
        "56<52": (main, {**good, "c": "无签名" + "长" * LONG}),
        "52<50": (main, {**good, "c": f"无签名{WORD_CJK}"}),
        "50<54": (main, {**good, "g": "tpl", "c": word}),
        "54<57": (main, {**good, "g": "tpl", "m": o.opted}),
        "57<53": (main, {**good, "m": o.sent_then_opted[0], "c": o.sent_then_opted[1]}),
        "53<41": (
            o.poor,
            {
                **good,
                "u": o.poor.username,
                "p": o.poor.api_key,
                "m": o.poor_sent[0],
                "c": o.poor_sent[1],
            },
        ),
        "52<41": (
            o.poor,
            {**good, "u": o.poor.username, "p": o.poor.api_key, "c": "没有签名的短信"},
        ),
        # each condition alone, so that the cases above cannot pass by accident
        "43": (o.walled, {**good, "u": o.walled.username, "p": o.walled.api_key}),
        "57": (main, {**good, "m": o.opted}),
        "53": (main, {**good, "m": o.sent[0], "c": o.sent[1]}),
        "41": (o.poor, {**good, "u": o.poor.username, "p": o.poor.api_key}),
        "54": (main, {**good, "g": "tpl"}),
    }
    return cases[case]


ORDER_CASES = [
    "-1<30",
    "30<51",
    "30<42",
    "42<43",
    "43<55",
    "55<51",
    "51<56",
    "51<50",
    "56<52",
    "52<50",
    "50<54",
    "54<57",
    "57<53",
    "53<41",
    "52<41",
    "43",
    "57",
    "53",
    "41",
    "54",
]


@pytest.mark.parametrize("case", ORDER_CASES)
def test_first_failed_check_decides(gate: Gate, order: Order, numbers: Numbers, case: str) -> None:
    expected = case.split("<")[0]
    acct, params = _case(order, numbers, case)
    refused(gate, acct, expected, lambda: gate.get("/sms", params))
    refused(gate, acct, expected, lambda: gate.post("/sms", data=params))


# -- wire details ---------------------------------------------------------------------------


def _params(acct: Account, m: str, c: str, **extra: str) -> dict[str, str]:
    return {"u": acct.username, "p": acct.api_key, "m": m, "c": c, **extra}


def test_answer_is_exactly_the_code_in_text_plain(
    shared_server: ServerProcess, acct: Account, numbers: Numbers
) -> None:
    cases = [
        (_params(acct, numbers.one(), content()), b"0"),
        (_params(acct, BAD_NUMBER, content()), b"51"),
        (_params(acct, numbers.one(), "no signature"), b"52"),
        ({**_params(acct, numbers.one(), content()), "u": "nobody_at_all"}, b"30"),
        ({"u": acct.username, "p": acct.api_key, "m": numbers.one()}, b"-1"),
    ]
    for params, expected in cases:
        for method in ("GET", "POST"):
            if method == "GET":
                answer = raw_request(
                    shared_server,
                    "GET",
                    "/sms?" + query_string(params),
                    headers={"Accept": "application/json"},  # still text/plain
                )
            else:
                answer = raw_request(
                    shared_server,
                    "POST",
                    "/sms",
                    body=query_string(params).encode(),
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
            assert answer.status == 200
            assert answer.headers["content-type"] == TEXT
            assert answer.body == expected  # no newline, no whitespace
            assert answer.headers["content-length"] == str(len(expected))
            if expected == b"0":
                params = {**params, "m": numbers.one(), "c": content()}


def test_post_form_body(
    shared_server: ServerProcess, gate: Gate, acct: Account, numbers: Numbers
) -> None:
    number, c = numbers.one(), content("表单 提交+加号&和号=等号")
    charged(gate, acct, 1, 1, lambda: gate.post("/sms", data=_params(acct, number, c)))
    [row] = stored_messages(shared_server, acct.username)
    assert (row["phone"], row["content"]) == (number, c)


def test_mixed_query_and_body(
    shared_server: ServerProcess, gate: Gate, acct: Account, numbers: Numbers
) -> None:
    number, c = numbers.one(), content("混合 方式")
    query = {"u": acct.username, "p": acct.md5, "m": number}
    charged(gate, acct, 1, 1, lambda: gate.post("/sms", data={"c": c}, params=query))
    [row] = stored_messages(shared_server, acct.username)
    assert (row["phone"], row["content"]) == (number, c)


def test_a_key_in_both_takes_the_bodys_value(
    shared_server: ServerProcess, gate: Gate, acct: Account, numbers: Numbers
) -> None:
    number, c = numbers.one(), content("正文里的")
    query = _params(acct, BAD_NUMBER, content("地址栏里的"), g="nosuch")
    body = {"m": number, "c": c, "g": "general", "p": acct.md5}
    charged(gate, acct, 1, 1, lambda: gate.post("/sms", data=body, params=query))
    [row] = stored_messages(shared_server, acct.username)
    assert (row["phone"], row["content"]) == (number, c)
    # and the other way round: a good query value is overridden by a bad body value
    good_query = _params(acct, numbers.one(), content())
    refused(gate, acct, "51", lambda: gate.post("/sms", data={"m": BAD_NUMBER}, params=good_query))
    refused(gate, acct, "30", lambda: gate.post("/sms", data={"p": "0" * 32}, params=good_query))


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(quote_plus, id="plus"),
        pytest.param(lambda s: quote(s, safe=""), id="percent20"),
    ],
)
def test_spaces_as_plus_or_percent20(
    shared_server: ServerProcess, acct: Account, numbers: Numbers, encode: Callable[[str], str]
) -> None:
    c = content("Your code is 1 2 3, a+b")
    target = f"/sms?u={acct.username}&p={acct.api_key}&m={numbers.one()}&c={encode(c)}"
    assert ("+" in target.split("&c=")[1]) == (encode is quote_plus)
    assert raw_request(shared_server, "GET", target).code == "0"
    [row] = stored_messages(shared_server, acct.username)
    assert row["content"] == c


def test_double_encoded_content_is_stored_as_the_original(
    shared_server: ServerProcess, gate: Gate, acct: Account, numbers: Numbers
) -> None:
    # urlencode twice (what some PHP clients do); content without spaces
    plain = content("双重编码，验证码：（ＯＫ）")
    once = urlencode({"c": plain})[2:]
    target = f"/sms?u={acct.username}&p={acct.api_key}&m={numbers.one()}&{urlencode({'c': once})}"
    assert raw_request(shared_server, "GET", target).code == "0"
    # rawurlencode twice keeps spaces (%2520) and a real plus (%252B)
    spaced = content("two words + more")
    twice = quote(quote(spaced, safe=""), safe="")
    target = f"/sms?u={acct.username}&p={acct.api_key}&m={numbers.one()}&c={twice}"
    assert raw_request(shared_server, "GET", target).code == "0"
    # also in a POST body
    body = f"u={acct.username}&p={acct.api_key}&m={numbers.one()}&{urlencode({'c': once})}"
    assert gate.post("/sms", content=body.encode()) == "0"
    stored = [r["content"] for r in stored_messages(shared_server, acct.username)]
    assert stored == [plain, spaced, plain]


def test_a_percent_in_plain_content_is_kept(
    shared_server: ServerProcess, gate: Gate, acct: Account, numbers: Numbers
) -> None:
    c = content("优惠50%，编码%E4%B8%AD不是双重编码")
    assert gate.sms(acct, numbers.one(), c) == "0"
    [row] = stored_messages(shared_server, acct.username)
    assert row["content"] == c


def test_separators_prefixes_and_spaces_around_numbers(
    shared_server: ServerProcess, acct: Account, numbers: Numbers
) -> None:
    n = numbers.many(6)
    # raw query: %2B86 is "+86"; a raw + is a space, so "+86..." arrives as " 86..."
    m = (
        f"%20{n[0]}%20%EF%BC%8C%2B86{n[1]},86{n[2]}%20,%20%200086{n[3]}"
        f",+86{n[4]}%EF%BC%8C%2B86%20{n[5]}"
    )
    target = f"/sms?u={acct.username}&p={acct.api_key}&m={m}&c={quote(content())}"
    before = books(shared_server, acct.username)
    assert raw_request(shared_server, "GET", target).code == "0"
    assert books(shared_server, acct.username).balance == before.balance - 6
    assert sorted(r["phone"] for r in stored_messages(shared_server, acct.username)) == sorted(n)


def test_trailing_slash(
    shared_server: ServerProcess, gate: Gate, acct: Account, numbers: Numbers
) -> None:
    charged(gate, acct, 1, 1, lambda: gate.sms(acct, numbers.one(), content(), path="/sms/"))
    charged(
        gate, acct, 1, 1, lambda: gate.post("/sms/", data=_params(acct, numbers.one(), content()))
    )


@pytest.mark.parametrize(
    ("length", "units"), [(70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)]
)
def test_long_message_units(
    shared_server: ServerProcess,
    gate: Gate,
    acct: Account,
    numbers: Numbers,
    length: int,
    units: int,
) -> None:
    assert gate.query(acct) == (0, 1000)
    assert gate.sms(acct, numbers.many(2), sized(length)) == "0"
    assert gate.query(acct) == (2 * units, 1000 - 2 * units)
    assert {r["units"] for r in stored_messages(shared_server, acct.username)} == {units}


def test_characters_outside_the_bmp_count_two(gate: Gate, acct: Account, numbers: Numbers) -> None:
    c = sized(69)[:-1] + "😀"  # 69 characters, 70 UTF-16 code units: 1 unit
    assert len(c) == 69
    charged(gate, acct, 1, 1, lambda: gate.sms(acct, numbers.one(), c))
    c = sized(70)[:-1] + "😀"  # 70 characters, 71 code units: 2 units
    charged(gate, acct, 2, 1, lambda: gate.sms(acct, numbers.one(), c))


def test_account_show_and_query_agree(
    shared_server: ServerProcess, gate: Gate, acct: Account, numbers: Numbers
) -> None:
    assert gate.sms(acct, numbers.many(3), sized(135)) == "0"  # 3 numbers x 3 units
    shown = shared_server.show(acct.username)
    assert (shown["sent"], shown["balance"]) == ("9", "991")
    assert gate.query(acct) == (9, 991)


def test_price_2_product_doubles_the_charge(
    shared_server: ServerProcess, gate: Gate, acct: Account, numbers: Numbers, catalogue: None
) -> None:
    charged(
        gate, acct, 2 * 2 * 2, 2, lambda: gate.sms(acct, numbers.many(2), sized(71), g="double")
    )
    assert {(r["units"], r["cost"]) for r in stored_messages(shared_server, acct.username)} == {
        (2, 4)
    }
    assert gate.query(acct) == (8, 992)


# -- /wsms ----------------------------------------------------------------------------


def _wsms(acct: Account, m: str, c: str | None = None, path: str = "/wsms") -> str:
    return f"{path}?u={acct.username}&p={acct.api_key}&m={m}&c={quote(c or content('Hi'))}"


@pytest.mark.parametrize(
    "m",
    [
        pytest.param("%2B14155552671", id="encoded-plus"),
        pytest.param("+14155552671", id="raw-plus-is-a-space"),
        pytest.param("%2014155552671", id="leading-space"),
    ],
)
def test_wsms_e164_accepted(shared_server: ServerProcess, acct: Account, m: str) -> None:
    before = books(shared_server, acct.username)
    assert raw_request(shared_server, "GET", _wsms(acct, m)).code == "0"
    [row] = stored_messages(shared_server, acct.username)
    assert (row["phone"], row["kind"]) == ("+14155552671", "intl")
    assert books(shared_server, acct.username).balance == before.balance - 1


@pytest.mark.parametrize(
    "m",
    [
        pytest.param("14155552671", id="bare-digits"),
        pytest.param("%2B1415555267", id="too-short-for-its-country"),
        pytest.param("%2B19995550100", id="no-such-area-code"),
        pytest.param("%2B999123456789", id="no-such-country"),
        pytest.param("%2B14155552671,14155552672", id="one-bare-among-good"),
    ],
)
def test_wsms_invalid_number_is_51(shared_server: ServerProcess, steady: Account, m: str) -> None:
    before = books(shared_server, steady.username)
    assert raw_request(shared_server, "GET", _wsms(steady, m)).code == "51"
    assert books(shared_server, steady.username) == before


def test_wsms_paths_and_several_numbers(shared_server: ServerProcess, acct: Account) -> None:
    for path in ("/wsms/sms", "/wsms/"):
        assert (
            raw_request(shared_server, "GET", _wsms(acct, "%2B447911123456", path=path)).code == "0"
        )
    both = "%2B14155552671,%2B447911123456"
    assert raw_request(shared_server, "GET", _wsms(acct, both)).code == "0"
    phones = [r["phone"] for r in stored_messages(shared_server, acct.username)]
    assert sorted(phones) == ["+14155552671", "+447911123456", "+447911123456", "+447911123456"]
    assert books(shared_server, acct.username).balance == 1000 - 4


# -- /voice ----------------------------------------------------------------------------


def test_voice_code_to_one_number(
    shared_server: ServerProcess, gate: Gate, acct: Account, numbers: Numbers
) -> None:
    number = numbers.one()
    charged(gate, acct, 1, 1, lambda: gate.sms(acct, number, "123456", path="/voice"))
    [row] = stored_messages(shared_server, acct.username)
    assert (row["phone"], row["content"], row["kind"]) == (number, "123456", "voice")
    charged(gate, acct, 1, 1, lambda: gate.sms(acct, numbers.one(), "1234", path="/voice/"))


def test_voice_takes_one_number_only(gate: Gate, steady: Account, numbers: Numbers) -> None:
    refused(gate, steady, "51", lambda: gate.sms(steady, numbers.many(2), "123456", path="/voice"))


@pytest.mark.parametrize("code", ["12ab", "123", "123456789", f"{SIG}123456", "12 34"])
def test_voice_code_must_be_4_to_8_digits(
    gate: Gate, steady: Account, numbers: Numbers, code: str
) -> None:
    before = books(gate.server, steady.username)
    answer = gate.sms(steady, numbers.one(), code, path="/voice")
    assert answer != "0"
    assert books(gate.server, steady.username) == before


# -- the books ---------------------------------------------------------------------------


def test_refused_requests_change_nothing_visible(
    shared_server: ServerProcess, gate: Gate, acct: Account, numbers: Numbers, catalogue: None
) -> None:
    number, text = numbers.one(), content()
    assert gate.sms(acct, number, text) == "0"
    opted = numbers.one()
    add_optout(shared_server, acct.username, opted)
    shown = shared_server.show(acct.username)
    listed = v1_messages(gate.client, shared_server, acct)
    assert (shown["balance"], shown["sent"], len(listed)) == ("999", "1", 1)

    attempts = {
        "-1": {"m": number, "c": ""},
        "30": {"p": md5("wrong"), "m": numbers.one(), "c": content()},
        "55": {"g": "vip", "m": numbers.one(), "c": content()},
        "51": {"m": f"{numbers.one()},{BAD_NUMBER}", "c": content()},
        "56": {"m": numbers.one(), "c": sized(501)},
        "52": {"m": numbers.one(), "c": "没有签名"},
        "50": {"m": numbers.one(), "c": content(WORD_LATIN)},
        "54": {"g": "tpl", "m": numbers.one(), "c": content()},
        "57": {"m": f"{numbers.one()},{opted}", "c": content()},
        "53": {"m": f"{numbers.one()},{number}", "c": text},
        "41": {"g": "double", "m": ",".join(numbers.many(99)), "c": sized(500)},  # 1584 > 999
    }
    for expected, params in attempts.items():
        full = {"u": acct.username, "p": acct.api_key, **params}
        assert gate.get("/sms", full) == expected, params
        assert gate.post("/sms", data=full) == expected, params

    after = shared_server.show(acct.username)
    assert (after["balance"], after["sent"]) == ("999", "1")
    assert v1_messages(gate.client, shared_server, acct) == listed
    b = books(shared_server, acct.username)
    assert (b.balance, b.sent, b.ledger_sum, b.messages, b.batches) == (999, 1, 999, 1, 1)


def test_books_are_exact_after_mixed_traffic(
    shared_server: ServerProcess,
    gate: Gate,
    provisioner: Provisioner,
    numbers: Numbers,
    catalogue: None,
) -> None:
    acct = provisioner.account(balance=60)
    repeat = (numbers.one(), content())
    plan: list[tuple[str, dict[str, str], int, int]] = [  # (code, params, cost, messages)
        ("0", {"m": repeat[0], "c": repeat[1]}, 1, 1),
        ("53", {"m": repeat[0], "c": repeat[1]}, 0, 0),
        ("0", {"m": ",".join(numbers.many(5)), "c": sized(135)}, 15, 5),
        ("51", {"m": BAD_NUMBER, "c": content()}, 0, 0),
        ("0", {"m": ",".join(numbers.many(3)), "c": sized(71), "g": "double"}, 12, 3),
        ("52", {"m": numbers.one(), "c": "无签名"}, 0, 0),
        ("0", {"m": numbers.one(), "c": "5678"}, 1, 1),  # /voice below
        ("41", {"m": ",".join(numbers.many(40)), "c": content()}, 0, 0),  # 40 > 31 left
        ("0", {"m": ",".join(numbers.many(31)), "c": content()}, 31, 31),  # exactly the rest
        ("41", {"m": numbers.one(), "c": content()}, 0, 0),
    ]
    cost = messages = 0
    for i, (code, params, c, n) in enumerate(plan):
        path = "/voice" if params.get("c") == "5678" else "/sms"
        full = {"u": acct.username, "p": acct.api_key, **params}
        assert gate.get(path, full) == code, (i, params)
        cost, messages = cost + c, messages + n
    b = books(shared_server, acct.username)
    assert b.balance == 60 - cost == 0
    assert b.sent == cost == b.charged == b.message_cost
    assert b.ledger_sum == b.balance
    assert b.messages == messages == 41
    assert gate.query(acct) == (cost, 0)


def test_every_account_in_the_database_balances(
    shared_server: ServerProcess, gate: Gate, acct: Account, numbers: Numbers
) -> None:
    """Last in the module: over every account of the module (at least this test's own)."""
    assert gate.sms(acct, numbers.many(2), sized(135)) == "0"
    with shared_server.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT a.username, a.balance, a.sent, "
                "(SELECT COALESCE(SUM(l.delta), 0) FROM ledger l WHERE l.account_id = a.id), "
                "(SELECT COALESCE(SUM(-l.delta), 0) FROM ledger l WHERE l.account_id = a.id "
                " AND l.kind IN ('charge', 'refund')), "
                "(SELECT COALESCE(SUM(m.cost), 0) FROM messages m WHERE m.account_id = a.id) "
                "FROM accounts a"
            )
        ).all()
    assert acct.username in {row[0] for row in rows}
    for username, balance, sent, ledger_sum, charges, cost in rows:
        assert balance >= 0, username
        assert balance == ledger_sum, username
        assert sent == charges == cost, username
