"""Real HTTP clients sending through /sms, unchanged, as applications would use them.

httpx (sync and async), the standard library's urllib.request, curl and requests, each
with GET and POST; and clients configured with the server as their HTTP proxy, which send
absolute-form targets (`GET http://api.smsbao.com/sms?...`).
A recording relay shows that the proxied clients really put the absolute form on the wire.
Each test checks the answer and what was stored: the number and the exact content.
"""

from __future__ import annotations

import http.client
import re
import shutil
import subprocess
import urllib.request
from urllib.parse import urlencode

import httpx
import pytest
import requests

from tests.e2e.send_support import (
    SEND_ENV,
    TEXT,
    Numbers,
    books,
    content,
    raw_socket,
    relay,
    stored_messages,
    wire,
)
from tests.e2e.server_support import Account, ServerProcess

PROVIDER = "http://api.smsbao.com"
# What clients must carry intact: Chinese, spaces, and the characters urlencoding is about.
TRICKY = "客户端 测试 a+b&c=d 100% #1 ？"


@pytest.fixture(scope="module")
def shared_server_env() -> dict[str, str]:
    return dict(SEND_ENV)


@pytest.fixture(scope="module")
def pool_balance() -> int:
    return 100


@pytest.fixture
def message(acct: Account, numbers: Numbers) -> dict[str, str]:
    """The parameters of one request: MD5 password, as most SMSBao clients send it."""
    return {"u": acct.username, "p": acct.md5, "m": numbers.one(), "c": content(TRICKY)}


def assert_sent(server: ServerProcess, acct: Account, *sends: dict[str, str]) -> None:
    """Exactly these (number, content) were stored and charged, one unit each."""
    rows = stored_messages(server, acct.username)
    assert [(r["phone"], r["content"]) for r in rows] == [(s["m"], s["c"]) for s in sends]
    b = books(server, acct.username)
    assert (b.balance, b.sent, b.ledger_sum) == (100 - len(sends), len(sends), 100 - len(sends))


def direct_opener() -> urllib.request.OpenerDirector:
    """urllib without any proxy from the environment."""
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def check_urllib(response: http.client.HTTPResponse) -> str:
    assert response.status == 200
    assert response.headers["Content-Type"] == TEXT
    body = response.read()
    assert body in (b"0", b"-1") or body.isdigit(), body
    return body.decode()


# -- httpx ----------------------------------------------------------------------------


def test_httpx_get_and_post(
    shared_server: ServerProcess, acct: Account, numbers: Numbers, message: dict[str, str]
) -> None:
    second = {**message, "m": numbers.one(), "c": content(TRICKY)}
    with httpx.Client(trust_env=False, timeout=10) as client:
        assert wire(client.get(f"{shared_server.url}/sms", params=message)) == "0"
        assert wire(client.post(f"{shared_server.url}/sms", data=second)) == "0"
    assert_sent(shared_server, acct, message, second)


async def test_httpx_async(
    shared_server: ServerProcess, acct: Account, numbers: Numbers, message: dict[str, str]
) -> None:
    second = {**message, "m": numbers.one(), "c": content(TRICKY)}
    async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
        assert wire(await client.get(f"{shared_server.url}/sms", params=message)) == "0"
        assert wire(await client.post(f"{shared_server.url}/sms", data=second)) == "0"
    assert_sent(shared_server, acct, message, second)


@pytest.mark.parametrize("through", ["server", "recording-relay"])
def test_httpx_with_the_server_as_proxy(
    shared_server: ServerProcess, acct: Account, message: dict[str, str], through: str
) -> None:
    with relay(shared_server) as recorder:
        proxy = shared_server.url if through == "server" else recorder.url
        with httpx.Client(proxy=proxy, trust_env=False, timeout=10) as client:
            assert wire(client.get(f"{PROVIDER}/sms", params=message)) == "0"
    assert_sent(shared_server, acct, message)
    if through == "recording-relay":
        [line] = recorder.request_lines
        assert line.startswith(f"GET {PROVIDER}/sms?u={acct.username}&"), line
        assert line.endswith(" HTTP/1.1"), line


# -- urllib.request --------------------------------------------------------------------


def test_urllib_get_and_post(
    shared_server: ServerProcess, acct: Account, numbers: Numbers, message: dict[str, str]
) -> None:
    second = {**message, "m": numbers.one(), "c": content(TRICKY)}
    opener = direct_opener()
    with opener.open(f"{shared_server.url}/sms?{urlencode(message)}", timeout=10) as response:
        assert check_urllib(response) == "0"
    post = urllib.request.Request(f"{shared_server.url}/sms", data=urlencode(second).encode())
    with opener.open(post, timeout=10) as response:
        assert check_urllib(response) == "0"
    assert_sent(shared_server, acct, message, second)


@pytest.mark.parametrize("through", ["server", "recording-relay"])
def test_urllib_with_proxy_handler(
    shared_server: ServerProcess,
    acct: Account,
    numbers: Numbers,
    message: dict[str, str],
    through: str,
) -> None:
    second = {**message, "m": numbers.one(), "c": content(TRICKY)}
    with relay(shared_server) as recorder:
        proxy = shared_server.url if through == "server" else recorder.url
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy}))
        with opener.open(f"{PROVIDER}/sms?{urlencode(message)}", timeout=10) as response:
            assert check_urllib(response) == "0"
        post = urllib.request.Request(f"{PROVIDER}/sms", data=urlencode(second).encode())
        with opener.open(post, timeout=10) as response:
            assert check_urllib(response) == "0"
    assert_sent(shared_server, acct, message, second)
    if through == "recording-relay":
        assert [line.split("?")[0] for line in recorder.request_lines] == [
            f"GET {PROVIDER}/sms",
            f"POST {PROVIDER}/sms HTTP/1.1",
        ]


# -- curl -----------------------------------------------------------------------------


def curl(*args: str) -> tuple[dict[str, str], bytes]:
    """Run curl; (headers of the last response, body)."""
    exe = shutil.which("curl")
    assert exe is not None, "curl is not installed: `apt-get install curl` (.ci/run does)"
    result = subprocess.run(
        [exe, "-sS", "--max-time", "10", "-D", "-", *args],
        capture_output=True,
        timeout=20,
        check=True,
    )
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    assert head.startswith(b"HTTP/1.1 200"), head
    assert headers["content-type"] == TEXT
    return headers, body


def curl_fields(params: dict[str, str]) -> list[str]:
    return [
        arg for name, value in params.items() for arg in ("--data-urlencode", f"{name}={value}")
    ]


def test_curl_get_and_post(
    shared_server: ServerProcess, acct: Account, numbers: Numbers, message: dict[str, str]
) -> None:
    second = {**message, "m": numbers.one(), "c": content(TRICKY)}
    _, body = curl("--noproxy", "*", "-G", f"{shared_server.url}/sms", *curl_fields(message))
    assert body == b"0"
    _, body = curl("--noproxy", "*", f"{shared_server.url}/sms", *curl_fields(second))
    assert body == b"0"
    assert_sent(shared_server, acct, message, second)


def test_curl_with_the_server_as_proxy(
    shared_server: ServerProcess, acct: Account, message: dict[str, str]
) -> None:
    _, body = curl("--proxy", shared_server.url, "-G", f"{PROVIDER}/sms", *curl_fields(message))
    assert body == b"0"
    assert_sent(shared_server, acct, message)


# -- requests (a dev dependency) ---------------------------------------------------------


def test_requests_get_post_and_proxy(
    shared_server: ServerProcess, acct: Account, numbers: Numbers, message: dict[str, str]
) -> None:
    second = {**message, "m": numbers.one(), "c": content(TRICKY)}
    third = {**message, "m": numbers.one(), "c": content(TRICKY)}
    with requests.Session() as session:
        session.trust_env = False
        for response in (
            session.get(f"{shared_server.url}/sms", params=message, timeout=10),
            session.post(f"{shared_server.url}/sms", data=second, timeout=10),
            session.get(
                f"{PROVIDER}/sms",
                params=third,
                proxies={"http": shared_server.url},
                timeout=10,
            ),
        ):
            assert response.status_code == 200
            assert response.headers["content-type"] == TEXT
            assert response.content == b"0"
    assert_sent(shared_server, acct, message, second, third)


# -- raw sockets ----------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["api.smsbao.com", "www.smsbao.com", "sms.example.internal:8080"])
def test_raw_absolute_form_get_and_post(
    shared_server: ServerProcess,
    acct: Account,
    numbers: Numbers,
    message: dict[str, str],
    host: str,
) -> None:
    second = {**message, "m": numbers.one(), "c": content(TRICKY)}
    get = (
        f"GET http://{host}/sms?{urlencode(message)} HTTP/1.1\r\n"
        f"Host: {host}\r\nConnection: close\r\n\r\n"
    ).encode()
    status, headers, body = raw_socket(shared_server, get)
    assert (status, headers["content-type"], body) == (b"HTTP/1.1 200 OK", TEXT, b"0")
    form = urlencode(second).encode()
    post = (
        f"POST http://{host}/sms HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(form)}\r\n\r\n"
    ).encode() + form
    status, headers, body = raw_socket(shared_server, post)
    assert (status, headers["content-type"], body) == (b"HTTP/1.1 200 OK", TEXT, b"0")
    assert_sent(shared_server, acct, message, second)


def test_raw_absolute_form_mixed_query_and_body(
    shared_server: ServerProcess, acct: Account, message: dict[str, str]
) -> None:
    query = urlencode({k: message[k] for k in ("u", "p", "m")})
    form = urlencode({"c": message["c"]}).encode()
    request = (
        f"POST {PROVIDER}/sms?{query} HTTP/1.1\r\nHost: api.smsbao.com\r\nConnection: close\r\n"
        f"Content-Type: application/x-www-form-urlencoded; charset=UTF-8\r\n"
        f"Content-Length: {len(form)}\r\n\r\n"
    ).encode() + form
    _, _, body = raw_socket(shared_server, request)
    assert body == b"0"
    assert_sent(shared_server, acct, message)


def test_raw_http_1_0_without_host(
    shared_server: ServerProcess, acct: Account, message: dict[str, str]
) -> None:
    status, headers, body = raw_socket(
        shared_server, f"GET /sms?{urlencode(message)} HTTP/1.0\r\n\r\n".encode()
    )
    assert re.fullmatch(rb"HTTP/1\.[01] 200 OK", status), status
    assert (headers["content-type"], body) == (TEXT, b"0")
    assert_sent(shared_server, acct, message)
