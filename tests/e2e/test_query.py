"""/query over real HTTP against the `smsgate serve` process: every code it can answer.

The shared server keeps the default query interval (60 s), so every test that expects a
successful query uses accounts of its own, and on an account already queried a 44 means
"authenticated". Failed-login limits are raised on it (all requests come from 127.0.0.1);
they, and a 2 s interval, are tested on a second server on the same database.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.e2e.accounts_support import AccountPool, account_pool
from tests.e2e.server_support import SEEN_WITHIN, Account, ServerProcess, md5, unique_name
from tests.support.redis_state import database_prefix
from tests.support.waiting import wait_for

TEXT = "text/plain; charset=utf-8"
WIRE_BODY = re.compile(r"-1|[0-9]{1,2}|0\n[0-9]+,[0-9]+")


@pytest.fixture(scope="module")
def shared_server_env() -> dict[str, str]:
    return {
        "SMSGATE_LOGIN_FAILURES_PER_IP": "100000",
        "SMSGATE_LOGIN_FAILURES_PER_ACCOUNT": "100000",
    }


@pytest.fixture(scope="module")
def pool_balance() -> int:
    """`acct` and `other_acct`: balance 10, never queried yet."""
    return 10


@pytest.fixture
def other_acct(pool: AccountPool) -> Account:
    return pool.take()


def wire(response: httpx.Response) -> str:
    """The body, after checking what every SMSBao answer must look like."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == TEXT
    body = response.content.decode("utf-8")
    assert WIRE_BODY.fullmatch(body), repr(body)
    return body


def get(server: ServerProcess, params: dict[str, str], client: httpx.Client | None = None) -> str:
    if client is None:
        return wire(httpx.get(f"{server.url}/query", params=params, timeout=10))
    return wire(client.get(f"{server.url}/query", params=params, timeout=10))


def post(
    server: ServerProcess,
    data: dict[str, str],
    params: dict[str, str] | None = None,
) -> str:
    return wire(httpx.post(f"{server.url}/query", params=params, data=data, timeout=10))


def bound_client(address: str) -> httpx.Client:
    """A client whose requests come from `address` (any 127.0.0.0/8 address is local)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address))


@pytest.fixture
def from_127_0_0_2() -> Iterator[httpx.Client]:
    with bound_client("127.0.0.2") as client:
        yield client


def changed_within(
    probe: Callable[[], str], expected: str, timeout: float = SEEN_WITHIN
) -> tuple[str, float]:
    """Poll `probe` until it answers `expected`; the last answer and how long it took."""
    started = time.monotonic()
    body = wait_for(probe, lambda b: b == expected, timeout=timeout, interval=0.1)
    return str(body), time.monotonic() - started


# -- 0: success, in every way real clients send it -------------------------------------


@pytest.fixture(scope="module")
def queried(shared_server: ServerProcess, pool: AccountPool) -> Account:
    """An account whose query slot is taken for the rest of the module."""
    acct = pool.take()
    assert get(shared_server, {"u": acct.username, "p": acct.md5}) == "0\n0,10"
    return acct


def test_success_is_exactly_sent_comma_remaining(
    shared_server: ServerProcess, acct: Account
) -> None:
    response = httpx.get(
        f"{shared_server.url}/query", params={"u": acct.username, "p": acct.md5}, timeout=10
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == TEXT
    assert response.content == b"0\n0,10"  # one \n, none at the end, no whitespace


@pytest.mark.parametrize(
    ("method", "credential"),
    [
        pytest.param("GET", lambda a: a.md5, id="get-md5-lower"),
        pytest.param("GET", lambda a: a.md5.upper(), id="get-md5-upper"),
        pytest.param("GET", lambda a: a.api_key, id="get-apikey"),
        pytest.param("POST", lambda a: a.md5, id="post-md5"),
        pytest.param("POST", lambda a: md5(a.password + "!"), id="post-wrong-md5-control"),
        pytest.param("POST", lambda a: a.api_key, id="post-apikey"),
        pytest.param("MIX", lambda a: a.md5.upper(), id="u-in-url-p-in-body"),
    ],
)
def test_every_method_and_credential_form(
    shared_server: ServerProcess,
    queried: Account,
    method: str,
    credential: Callable[[Account], str],
) -> None:
    """On an account whose slot is taken, 44 means "accepted" (credentials come first)."""
    u, p = queried.username, credential(queried)
    if method == "GET":
        body = get(shared_server, {"u": u, "p": p})
    elif method == "POST":
        body = post(shared_server, {"u": u, "p": p})
    else:
        body = post(shared_server, {"p": p}, params={"u": u})
    accepted = p.lower() == queried.md5 or p == queried.api_key
    assert body == ("44" if accepted else "30")


def test_post_form_body(shared_server: ServerProcess, acct: Account) -> None:
    assert post(shared_server, {"u": acct.username, "p": acct.api_key}) == "0\n0,10"


def test_body_value_wins_over_query_string(shared_server: ServerProcess, queried: Account) -> None:
    u, p, wrong = queried.username, queried.md5, "0" * 32
    # a wrong p in the URL is overridden by the right one in the body (44: accepted)...
    assert post(shared_server, {"p": p}, params={"u": u, "p": wrong}) == "44"
    # ...and a right one in the URL by a wrong one in the body
    assert post(shared_server, {"p": wrong}, params={"u": u, "p": p}) == "30"
    assert post(shared_server, {"u": u}, params={"u": unique_name("ghost"), "p": p}) == "44"
    assert post(shared_server, {"u": unique_name("ghost")}, params={"u": u, "p": p}) == "30"


# -- -1, 30 (also for an unknown account) ---------------------------------------------


def test_missing_or_empty_u_or_p_is_minus_1(shared_server: ServerProcess, acct: Account) -> None:
    u, p = acct.username, acct.md5
    incomplete = [{}, {"u": u}, {"p": p}, {"u": "", "p": p}, {"u": u, "p": ""}, {"u": "", "p": ""}]
    for params in incomplete:
        assert get(shared_server, params) == "-1", params
        assert post(shared_server, params) == "-1", params
    for raw in ("u&p", f"u={u}&p", f"u={u}&p=", f"p={p}&u=", "U=x&P=y"):
        assert wire(httpx.get(f"{shared_server.url}/query?{raw}", timeout=10)) == "-1", raw
    # usernames match exactly
    assert get(shared_server, {"u": u.upper(), "p": p}) == "30"
    assert get(shared_server, {"u": f" {u}", "p": p}) == "30"
    # none of that used up the account's query slot
    assert get(shared_server, {"u": u, "p": p}) == "0\n0,10"


def test_wrong_password_is_30(shared_server: ServerProcess, acct: Account) -> None:
    wrong = [
        md5(acct.password + "x"),  # a well-formed MD5 of another password
        "f" * 32,
        acct.password,  # the plain password is not what SMSBao clients send
        acct.api_key[:-1] + ("0" if acct.api_key[-1] != "0" else "1"),  # an ApiKey, one off
        "not-hex-at-all",
    ]
    for p in wrong:
        assert get(shared_server, {"u": acct.username, "p": p}) == "30", p
        assert post(shared_server, {"u": acct.username, "p": p}) == "30", p
    # a wrong password does not use up the query slot
    assert get(shared_server, {"u": acct.username, "p": acct.md5}) == "0\n0,10"


def test_unknown_account_answers_like_a_wrong_password(shared_server: ServerProcess) -> None:
    name = unique_name("ghost")  # 30, not SMSBao's 40: usernames cannot be found by asking
    assert get(shared_server, {"u": name, "p": md5("whatever")}) == "30"
    assert post(shared_server, {"u": name, "p": md5("whatever")}) == "30"
    assert get(shared_server, {"u": "x" * 64, "p": "f" * 32}) == "30"


# -- 42, 43: status and allowlist, changed by the CLI while the server runs --------------


def test_disabled_account_is_42_and_enable_restores(
    shared_server: ServerProcess, acct: Account
) -> None:
    def probe() -> str:
        return get(shared_server, {"u": acct.username, "p": acct.md5})

    assert probe() == "0\n0,10"  # from here on the slot is taken: admitted means 44
    shared_server.cli("account", "set", acct.username, "--disable")
    body, took = changed_within(probe, "42")
    assert body == "42", f"disable not seen within {SEEN_WITHIN} s"
    # credentials are checked first: a wrong password still gets 30, and so on
    assert get(shared_server, {"u": acct.username, "p": md5("nope")}) == "30"
    assert post(shared_server, {"u": acct.username, "p": acct.api_key}) == "42"

    shared_server.cli("account", "set", acct.username, "--enable")
    body, took = changed_within(probe, "44")
    assert body == "44", f"enable not seen within {SEEN_WITHIN} s (took {took:.1f} s)"


def test_expired_account_is_42(shared_server: ServerProcess, acct: Account) -> None:
    def probe() -> str:
        return get(shared_server, {"u": acct.username, "p": acct.api_key})

    assert probe() == "0\n0,10"
    shared_server.cli("account", "set", acct.username, "--expires", "2020-01-01")
    body, _ = changed_within(probe, "42")
    assert body == "42", f"expiry not seen within {SEEN_WITHIN} s"
    shown = shared_server.show(acct.username)
    assert shown["status"] == "expired"
    assert shown["expiry"].startswith("2020-01-01")

    shared_server.cli("account", "set", acct.username, "--expires", "never")
    body, _ = changed_within(probe, "44")
    assert body == "44"
    # an expiry in the future admits
    shared_server.cli("account", "set", acct.username, "--expires", "2999-12-31T23:59")
    shared_server.wait_synced()
    assert probe() == "44"


def test_allowlist_is_43_for_other_addresses(
    shared_server: ServerProcess, acct: Account, from_127_0_0_2: httpx.Client
) -> None:
    params = {"u": acct.username, "p": acct.md5}

    def from_2() -> str:
        return get(shared_server, params, from_127_0_0_2)

    assert from_2() == "0\n0,10"  # any address while the allowlist is empty; slot now taken
    shared_server.cli("account", "allow-ip", acct.username, "127.0.0.1/32")
    body, _ = changed_within(from_2, "43")
    assert body == "43", f"allowlist not seen within {SEEN_WITHIN} s"
    assert get(shared_server, params) == "44"  # 127.0.0.1 passes the IP check
    assert get(shared_server, {"u": acct.username, "p": md5("bad")}, from_127_0_0_2) == "30"

    shared_server.cli("account", "allow-ip", acct.username, "127.0.0.2/31", "::1")
    body, _ = changed_within(from_2, "44")
    assert body == "44", "127.0.0.2 not admitted after `account allow-ip`"
    with bound_client("127.0.0.3") as inside, bound_client("127.0.0.4") as outside:
        assert get(shared_server, params, inside) == "44"
        assert get(shared_server, params, outside) == "43"


# -- 44: the balance may be queried once per interval ------------------------------------


def test_second_query_within_interval_is_44(
    shared_server: ServerProcess, acct: Account, other_acct: Account
) -> None:
    other = other_acct
    assert get(shared_server, {"u": acct.username, "p": acct.md5}) == "0\n0,10"
    # the limit is per account, whatever the credential or method
    assert get(shared_server, {"u": acct.username, "p": acct.md5}) == "44"
    assert get(shared_server, {"u": acct.username, "p": acct.api_key}) == "44"
    assert post(shared_server, {"u": acct.username, "p": acct.md5.upper()}) == "44"
    # ...and only that account's
    assert get(shared_server, {"u": other.username, "p": other.md5}) == "0\n0,10"


def test_apikey_issued_later_works(shared_server: ServerProcess, queried: Account) -> None:
    result = shared_server.cli("account", "apikey", queried.username)
    new_key = result.stdout.split("ApiKey:")[1].split()[0]
    assert len(new_key) == 32
    assert new_key != queried.api_key

    def probe() -> str:  # 30 until the server knows the key; then 44 (slot taken)
        return get(shared_server, {"u": queried.username, "p": new_key})

    body, _ = changed_within(probe, "44")
    assert body == "44", f"new ApiKey not accepted within {SEEN_WITHIN} s"
    assert post(shared_server, {"u": queried.username, "p": new_key}) == "44"
    # the first key keeps working
    assert get(shared_server, {"u": queried.username, "p": queried.api_key}) == "44"


# -- a second server on the same database, with other settings -------------------------


@pytest.fixture(scope="module")
def tuned_server(shared_server: ServerProcess) -> Iterator[ServerProcess]:
    node = shared_server.sibling(
        {
            # Its limits differ from the first server's, so its counters must too (on
            # Redis they would be shared: nodes of one cluster run the same settings).
            "SMSGATE_REDIS_PREFIX": database_prefix(shared_server.database_url) + "tuned:",
            "SMSGATE_QUERY_INTERVAL_SECONDS": "2",
            "SMSGATE_LOGIN_FAILURES_PER_ACCOUNT": "3",
            "SMSGATE_LOGIN_FAILURES_PER_IP": "5",
        }
    )
    try:
        yield node.start()
    finally:
        node.close()


@pytest.fixture(scope="module")
def tuned_pool(tuned_server: ServerProcess) -> Iterator[AccountPool]:
    # made before the tests: one of them times a 2 s window, undisturbed
    with account_pool(tuned_server, balance=10, total=4) as pool:
        yield pool


def test_query_slot_frees_after_interval_and_topups_show(
    tuned_server: ServerProcess, tuned_pool: AccountPool
) -> None:
    acct = tuned_pool.take()
    params = {"u": acct.username, "p": acct.md5}
    assert get(tuned_server, params) == "0\n0,10"
    first = time.monotonic()
    assert get(tuned_server, params) == "44"
    # The top-up runs beside the next query: a CLI process can take longer than the
    # interval to start on a loaded machine, and the query must land inside it.
    with ThreadPoolExecutor(max_workers=1) as pool:
        topup = pool.submit(tuned_server.cli, "account", "topup", acct.username, "5")
        time.sleep(max(0.0, first + 0.5 - time.monotonic()))
        assert get(tuned_server, params) == "44"  # half a second in: inside the interval
        topup.result()
    time.sleep(max(0.0, first + 2.05 - time.monotonic()))
    # the slot is free again after 2 s, and the top-up shows (within 2 s more at most)
    body = wait_for(lambda: get(tuned_server, params), lambda b: b != "44", timeout=SEEN_WITHIN)
    assert body == "0\n0,15"
    assert get(tuned_server, params) == "44"


def test_failed_logins_lock_the_guesser_out_not_the_account(
    tuned_server: ServerProcess, tuned_pool: AccountPool
) -> None:
    victim, neighbour, third = tuned_pool.take(), tuned_pool.take(), tuned_pool.take()
    server = tuned_server
    with bound_client("127.0.0.5") as attacker, bound_client("127.0.0.6") as owner:
        for attempt in range(3):
            body = get(server, {"u": victim.username, "p": md5(f"guess{attempt}")}, attacker)
            assert body == "30"
        # the guesser is locked out: the right password from there gets the same 30
        assert get(server, {"u": victim.username, "p": victim.md5}, attacker) == "30"
        form = {"u": victim.username, "p": victim.md5.upper()}
        assert wire(attacker.post(f"{server.url}/query", data=form, timeout=10)) == "30"
        # the owner is not (issue 13, finding 1): password from elsewhere, ApiKey from anywhere
        assert get(server, {"u": victim.username, "p": victim.md5}, owner) == "0\n0,10"
        assert get(server, {"u": victim.username, "p": victim.api_key}, attacker) == "44"
        # another account is unaffected, even from the attacker's address (3 < 5 failures)
        assert get(server, {"u": neighbour.username, "p": neighbour.md5}, attacker) == "0\n0,10"

    # per source address: 5 failures (unknown accounts count too) lock that address only
    with bound_client("127.0.0.7") as scanner, bound_client("127.0.0.8") as other:
        for _ in range(5):
            assert get(server, {"u": unique_name("ghost"), "p": md5("x")}, scanner) == "30"
        assert get(server, {"u": unique_name("ghost"), "p": md5("x")}, scanner) == "30"
        assert get(server, {"u": third.username, "p": third.md5}, scanner) == "30"
        assert get(server, {"u": third.username, "p": third.md5}, other) == "0\n0,10"
