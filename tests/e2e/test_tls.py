"""`smsgate serve --tls-cert F --tls-key F`: HTTPS and HTTP at once, on both servers.

The certificate comes from a local CA (trustme); a client that trusts that CA verifies
the server and sends an SMS over HTTPS, while plain HTTP keeps working on its port and
both ports share one server (one set of books).
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from tests.e2e.accounts_support import AccountPool
from tests.e2e.send_support import Numbers, content, wire
from tests.e2e.server_support import ServerProcess, free_port

pytestmark = pytest.mark.backends("sqlite")

HEAD_TIMEOUT = 3.0


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module", params=["granian", "uvicorn"])
def shared_server_env(
    request: pytest.FixtureRequest, ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("tls")
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    for blob in cert.cert_chain_pems[1:]:
        blob.write_to_path(str(folder / "cert.pem"), append=True)
    cert.private_key_pem.write_to_path(str(folder / "key.pem"))
    return {
        "SMSGATE_SERVER": request.param,
        "SMSGATE_TLS_CERT": str(folder / "cert.pem"),
        "SMSGATE_TLS_KEY": str(folder / "key.pem"),
        "SMSGATE_TLS_PORT": str(free_port()),
        "SMSGATE_HTTP_HEADER_TIMEOUT_SECONDS": str(HEAD_TIMEOUT),
    }


@pytest.fixture(scope="module")
def https(shared_server: ServerProcess, ca: trustme.CA) -> Iterator[httpx.Client]:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    port = shared_server.env["SMSGATE_TLS_PORT"]
    with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=context, trust_env=False) as c:
        yield c


def test_an_sms_sent_over_https_is_verified_and_accepted(
    shared_server: ServerProcess, https: httpx.Client, pool: AccountPool, numbers: Numbers
) -> None:
    acct = pool.take()
    params = {"u": acct.username, "p": acct.api_key, "m": numbers.one(), "c": content()}
    assert wire(https.get("/sms", params=params)) == "0"
    # The same server and books over plain HTTP: one message sent, 1 unit spent.
    plain = httpx.get(f"{shared_server.url}/query", params={"u": acct.username, "p": acct.api_key})
    assert plain.status_code == 200
    sent, _remaining = plain.text.split("\n")[1].split(",")
    assert sent == "1"


def test_plain_http_still_sends_on_its_port(
    shared_server: ServerProcess, pool: AccountPool, numbers: Numbers
) -> None:
    acct = pool.take()
    params = {"u": acct.username, "p": acct.api_key, "m": numbers.one(), "c": content()}
    assert wire(httpx.get(f"{shared_server.url}/sms", params=params, trust_env=False)) == "0"


def test_a_client_that_does_not_trust_the_ca_refuses_the_server(
    shared_server: ServerProcess,
) -> None:
    port = shared_server.env["SMSGATE_TLS_PORT"]
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"https://127.0.0.1:{port}/healthz", trust_env=False)


def test_serve_refuses_half_a_tls_setup(shared_gateway: ServerProcess, tmp_path: Path) -> None:
    result = shared_gateway.cli(
        "serve",
        "--port",
        str(free_port()),
        "--tls-cert",
        str(tmp_path / "none.pem"),
        env={"SMSGATE_TLS_KEY": ""},
        check=False,
    )
    assert result.returncode == 1
    assert "--tls-key" in result.stderr
    assert "Traceback" not in result.stderr


def _tls_socket(server: ServerProcess, ca: trustme.CA) -> ssl.SSLSocket:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    port = int(server.env["SMSGATE_TLS_PORT"])
    raw = socket.create_connection(("127.0.0.1", port), timeout=15)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


def test_the_https_listener_refuses_a_huge_head_early(
    shared_server: ServerProcess, ca: trustme.CA
) -> None:
    """The TLS listener gets the same head limit as the plain one (64 KiB)."""
    sent = 0
    with _tls_socket(shared_server, ca) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        try:
            while sent < 8 * 2**20:
                sock.sendall(b"a" * 65536)
                sent += 65536
            sock.sendall(b"\r\n\r\n")
            answer = sock.recv(100)
        except OSError:
            answer = b""
    assert sent < 8 * 2**20 or not answer.startswith(b"HTTP/1.1 200"), answer
    assert not answer.startswith(b"HTTP/1.1 200")


def test_the_https_listener_drops_a_client_that_stalls_in_its_head(
    shared_server: ServerProcess, ca: trustme.CA
) -> None:
    with _tls_socket(shared_server, ca) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        started = time.monotonic()
        try:
            answer = sock.recv(100)
        except OSError:
            answer = b""
        waited = time.monotonic() - started
    assert not answer.startswith(b"HTTP/1.1 200"), answer
    assert waited < HEAD_TIMEOUT + 10  # closed by the head timeout, not the socket's 15 s
