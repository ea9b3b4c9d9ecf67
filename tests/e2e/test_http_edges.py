"""HTTP edges of the real server: proxy-style requests, odd paths and hosts, hostile input,
the JSON side (/healthz, /v1) and what reaches the log.

Parsing does not depend on the database, so the shared server runs on SQLite only; the
restart test, which is about durability, runs on every backend.
"""

from __future__ import annotations

import signal
import socket
import urllib.parse
import urllib.request
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.accounts_support import AccountPool
from tests.e2e.server_support import Account, ServerProcess, unique_name

pytestmark = pytest.mark.backends("sqlite")

TEXT = "text/plain; charset=utf-8"
MAX_BODY = 64 * 1024


@pytest.fixture(scope="module")
def shared_server_env() -> dict[str, str]:
    # every request comes from 127.0.0.1: keep the failed-login limits out of the way;
    # the access log is opt-in, and what it writes is under test here
    return {
        "SMSGATE_LOGIN_FAILURES_PER_IP": "100000",
        "SMSGATE_LOGIN_FAILURES_PER_ACCOUNT": "100000",
        "SMSGATE_ACCESS_LOG": "true",
    }


@pytest.fixture(scope="module")
def pool_balance() -> int:
    """`acct`: balance 10, never queried yet."""
    return 10


@pytest.fixture(scope="module")
def queried(shared_server: ServerProcess, pool: AccountPool) -> Account:
    """An account whose query slot is taken: a 44 from it means "routed and accepted"."""
    account = pool.take()
    assert query(shared_server, f"u={account.username}&p={account.md5}") == "0\n0,10"
    return account


def wire(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == TEXT
    return response.content.decode("utf-8")


def query(server: ServerProcess, raw_query: str, path: str = "/query") -> str:
    """GET with the query string exactly as given (no re-encoding)."""
    return wire(httpx.get(f"{server.url}{path}?{raw_query}", timeout=10))


def raw_request(server: ServerProcess, data: bytes) -> tuple[str, dict[str, str], bytes]:
    """Send bytes as they are; return (status line, headers, body) of the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    assert int(headers["content-length"]) == len(body)
    return status, headers, body


def absolute_form(target: str, host: str = "api.smsbao.com") -> bytes:
    return (
        f"GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: legacy-php\r\n"
        "Connection: close\r\n\r\n"
    ).encode()


# -- absolute-form targets (clients behind an HTTP proxy setting) ------------------------


def test_absolute_form_over_a_raw_socket(shared_server: ServerProcess, acct: Account) -> None:
    target = f"http://api.smsbao.com/query?u={acct.username}&p={acct.md5}"
    status, headers, body = raw_request(shared_server, absolute_form(target))
    assert status == "HTTP/1.1 200 OK"
    assert headers["content-type"] == TEXT
    assert body == b"0\n0,10"
    # the same, answered 44 now: the request reached the account, not a proxy error
    target = f"HTTP://www.smsbao.com/query/?p={acct.api_key}&u={acct.username}"
    assert raw_request(shared_server, absolute_form(target, "www.smsbao.com"))[2] == b"44"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("http://api.smsbao.com/query?u=ghost-x&p=0123456789abcdef0123456789abcdef", b"30"),
        ("http://api.smsbao.com/query?u=ghost-x", b"-1"),
        ("http://api.smsbao.com:80/query/?u=&p=", b"-1"),
        ("https://api.smsbao.com/query?p=x&u=ghost-y", b"30"),
    ],
)
def test_absolute_form_codes(shared_server: ServerProcess, target: str, expected: bytes) -> None:
    status, headers, body = raw_request(shared_server, absolute_form(target))
    assert (status, headers["content-type"], body) == ("HTTP/1.1 200 OK", TEXT, expected)


def test_httpx_with_the_server_as_proxy(shared_server: ServerProcess, acct: Account) -> None:
    with httpx.Client(proxy=shared_server.url, timeout=10) as client:
        params = {"u": acct.username, "p": acct.md5}
        response = client.get("http://api.smsbao.com/query", params=params)
        assert wire(response) == "0\n0,10"
        response = client.post("http://api.smsbao.com/query", data=params)
        assert wire(response) == "44"
        response = client.get("http://api.smsbao.com/query/", params={"u": unique_name()})
        assert wire(response) == "-1"


def test_urllib_with_a_proxy_handler(shared_server: ServerProcess, acct: Account) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": shared_server.url}))
    query_string = urllib.parse.urlencode({"u": acct.username, "p": acct.api_key})
    with opener.open(f"http://www.smsbao.com/query?{query_string}", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == TEXT
        assert response.read() == b"0\n0,10"


# -- paths and hosts -----------------------------------------------------------------------


def test_trailing_slash(shared_server: ServerProcess, queried: Account) -> None:
    assert query(shared_server, f"u={queried.username}&p={queried.md5}", "/query/") == "44"
    response = httpx.post(
        f"{shared_server.url}/query/", data={"u": queried.username, "p": queried.md5}, timeout=10
    )
    assert wire(response) == "44"
    assert query(shared_server, f"u={queried.username}&p={'0' * 32}", "/query/") == "30"


@pytest.mark.parametrize(
    "host", ["api.smsbao.com", "www.smsbao.com", "sms.example.org:8443", "10.0.0.1", "x"]
)
def test_any_host_header(shared_server: ServerProcess, queried: Account, host: str) -> None:
    def ask(username: str) -> str:
        response = httpx.get(
            f"{shared_server.url}/query",
            params={"u": username, "p": queried.api_key},
            headers={"Host": host},
            timeout=10,
        )
        return wire(response)

    assert ask(queried.username) == "44"
    assert ask(unique_name("ghost")) == "30"


# -- bad input: a code, and nothing changes ------------------------------------------------


def test_bad_input_gets_a_code_and_changes_nothing(
    shared_server: ServerProcess, acct: Account
) -> None:
    before = (shared_server.show(acct.username), shared_server.ledger(acct.username))
    u, p = acct.username, acct.md5
    form = {"content-type": "application/x-www-form-urlencoded"}
    url = f"{shared_server.url}/query"

    def post_raw(body: bytes, headers: dict[str, str] | None = None) -> str:
        return wire(httpx.post(url, content=body, headers=headers or form, timeout=30))

    def chunks(total: int) -> Iterator[bytes]:
        yield f"u={u}&p={p}&pad=".encode()
        for _ in range(total // 4096):
            yield b"a" * 4096

    answers = {
        "empty u": query(shared_server, f"u=&p={p}"),
        "empty p": query(shared_server, f"u={u}&p="),
        "empty body values": post_raw(b"u=&p="),
        "10,000-char u": query(shared_server, f"u={'a' * 10_000}&p={p}"),
        "10,000-char p": query(shared_server, f"u={u}&p={'f' * 10_000}"),
        "10,000-char p in body": post_raw(f"u={u}&p={'f' * 10_000}".encode()),
        "body over 64 KiB": post_raw(f"u={u}&p={p}&pad={'a' * MAX_BODY}".encode()),
        "chunked body over 64 KiB": wire(
            httpx.post(url, content=chunks(MAX_BODY + 8192), headers=form, timeout=30)
        ),
        "%FF in u": query(shared_server, f"u={u}%FF&p={p}"),
        "%FF in p": query(shared_server, f"u={u}&p=%FF{p[2:]}"),
        "%C3%28 in body": post_raw(f"u={u}&p={p}%C3%28".encode()),
        "u twice, different": query(shared_server, f"u={u}&u={unique_name()}&p={p}"),
        "p twice, different (both valid)": query(shared_server, f"u={u}&p={p}&p={acct.api_key}"),
        "p twice in body": post_raw(f"u={u}&p={p}&p={p.upper()}".encode()),
    }
    expected = {
        "10,000-char u": "30",
        "10,000-char p": "30",
        "10,000-char p in body": "30",
    }
    assert answers == {name: expected.get(name, "-1") for name in answers}

    after = (shared_server.show(acct.username), shared_server.ledger(acct.username))
    assert after == before
    assert after[0]["balance"] == "10"
    assert after[0]["sent"] == "0"
    # it can still query: none of the above took the query slot
    assert query(shared_server, f"u={u}&p={p}") == "0\n0,10"
    # a body of exactly 64 KiB is still read (44: past the credentials, slot taken)
    body = f"u={u}&p={p}&pad=".encode()
    assert post_raw(body + b"a" * (MAX_BODY - len(body))) == "44"


def test_duplicated_parameter_with_the_same_value_is_accepted(
    shared_server: ServerProcess, queried: Account
) -> None:
    u, p = queried.username, queried.md5
    assert query(shared_server, f"u={u}&p={p}&u={u}&p={p}") == "44"  # accepted: not -1
    response = httpx.post(
        f"{shared_server.url}/query",
        content=f"u={u}&u={u}&p={p}&p={p}".encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert wire(response) == "44"


def test_other_methods_are_refused_and_change_nothing(
    shared_server: ServerProcess, acct: Account
) -> None:
    before = (shared_server.show(acct.username), shared_server.ledger(acct.username))
    url = f"{shared_server.url}/query?u={acct.username}&p={acct.md5}"
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS"):
        response = httpx.request(method, url, timeout=10)
        assert response.status_code == 405, method
        assert set(response.headers["allow"].replace(" ", "").split(",")) == {
            "GET",
            "HEAD",
            "POST",
        }
    assert (shared_server.show(acct.username), shared_server.ledger(acct.username)) == before
    # the query slot is still free: none of the above was served as a query
    assert query(shared_server, f"u={acct.username}&p={acct.md5}") == "0\n0,10"


def test_raw_utf8_in_the_request_target_is_served(
    shared_server: ServerProcess, queried: Account
) -> None:
    """PHP and shell snippets put the content in the URL unencoded; the provider accepts it."""
    target = f"/query?u={queried.username}&p={queried.md5}&c=【短信宝】你好"
    request = f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    status, headers, body = raw_request(shared_server, request)
    assert (status, headers["content-type"], body) == ("HTTP/1.1 200 OK", TEXT, b"44")


# -- the JSON side --------------------------------------------------------------------------


def test_healthz_is_json(shared_server: ServerProcess) -> None:
    response = httpx.get(f"{shared_server.url}/healthz", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert isinstance(body["version"], str)
    assert body["version"]


def test_openapi_document_loads(shared_server: ServerProcess) -> None:
    response = httpx.get(f"{shared_server.url}/v1/openapi.json", timeout=10)
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert "/v1/account" in document["paths"]


def test_v1_account_with_a_bearer_apikey(shared_server: ServerProcess, queried: Account) -> None:
    acct = queried
    response = httpx.get(
        f"{shared_server.url}/v1/account",
        headers={"Authorization": f"Bearer {acct.api_key}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["username"] == acct.username
    assert body["balance"] == 10
    assert body["sent"] == 0
    assert body["status"] == "active"


@pytest.mark.parametrize(
    "authorization",
    ["Bearer 0123456789abcdef0123456789abcdef", "Bearer", "Basic dXNlcjpwYXNz", None],
    ids=["wrong-key", "empty-key", "basic-scheme", "no-header"],
)
def test_v1_account_without_a_valid_key_is_401(
    shared_server: ServerProcess, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = httpx.get(f"{shared_server.url}/v1/account", headers=headers, timeout=10)
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["code"] == "bad_credentials"
    assert body["message"]


# -- what reaches the log --------------------------------------------------------------------


def test_log_never_contains_the_secret_sent_as_p(
    shared_server: ServerProcess, acct: Account
) -> None:
    u, p, key = acct.username, acct.md5, acct.api_key
    assert query(shared_server, f"u={u}&p={p}") == "0\n0,10"
    assert query(shared_server, f"p={key}&u={u}") == "44"
    assert query(shared_server, f"u={u}&p={p.upper()}", "/query/") == "44"
    assert query(shared_server, f"u={unique_name()}&p={p}") == "30"
    assert query(shared_server, f"u={u}&p={p}&p={p}&x=1") == "44"
    target = f"http://api.smsbao.com/query?u={u}&p={key}"
    assert raw_request(shared_server, absolute_form(target))[2] == b"44"
    response = httpx.post(
        f"{shared_server.url}/query", params={"u": u}, data={"p": key}, timeout=10
    )
    assert wire(response) == "44"

    logs = shared_server.logs()
    assert f"/query?u={u}&p=" in logs, "no access log line for the requests above"
    for secret in (p, p.upper(), key):
        assert secret not in logs


def test_log_masks_a_percent_encoded_p(shared_server: ServerProcess, queried: Account) -> None:
    assert query(shared_server, f"u={queried.username}&%70={queried.md5}") == "44"
    assert queried.md5 not in shared_server.logs()


# -- restarts: same port, same database ------------------------------------------------------


@pytest.mark.parametrize("server_env", [{"SMSGATE_QUERY_INTERVAL_SECONDS": "0"}], indirect=True)
def test_restart_after_kill_keeps_accounts_and_stop_is_graceful(server: ServerProcess) -> None:
    acct = server.create_account(balance=10)
    params = {"u": acct.username, "p": acct.md5}
    assert wire(httpx.get(f"{server.url}/query", params=params, timeout=10)) == "0\n0,10"

    assert server.kill() == -9
    server.start()
    assert wire(httpx.get(f"{server.url}/query", params=params, timeout=10)) == "0\n0,10"

    # SIGTERM is a clean shutdown (uvicorn re-raises the signal once it is done)
    assert server.stop() in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in server.logs()
    assert not server.running
