"""The SSRF guard seen from outside: the CLI refuses internal MO URLs (an operator's
allow-list admits them), customers cannot read receivers' answers, and the simulator
API is off when turned off."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.server_support import Account, ServerProcess

pytestmark = pytest.mark.backends("sqlite")


@pytest.fixture(scope="module")
def shared_server_env() -> dict[str, str]:
    return {"SMSGATE_SIMULATOR_API": "false"}


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata"),
        ("http://[fd00:ec2::254]/", "fd00:ec2::254 is a cloud metadata service"),
        ("http://metadata.google.internal/", "is a cloud metadata service"),
        ("http://localhost:6379/", "localhost is this machine"),
        ("http://10.0.0.1/mo", "10.0.0.1 is private"),
    ],
)
def test_the_cli_refuses_an_internal_mo_url_and_changes_nothing(
    shared_server: ServerProcess, acct: Account, url: str, says: str
) -> None:
    result = shared_server.cli("account", "set", acct.username, "--mo-url", url, check=False)
    assert result.returncode == 1
    assert says in result.stderr
    assert "push_allowed_targets" in result.stderr  # says how to allow one
    assert "Traceback" not in result.stderr
    assert shared_server.show(acct.username)["mo_url"] == "-"


def test_the_allow_list_admits_an_internal_receiver(
    shared_server: ServerProcess, acct: Account
) -> None:
    url = "http://10.1.2.3:8080/mo"
    shared_server.cli(
        "account",
        "set",
        acct.username,
        "--mo-url",
        url,
        env={"SMSGATE_PUSH_ALLOWED_TARGETS": "10.1.0.0/16"},
    )
    assert shared_server.show(acct.username)["mo_url"] == url


def test_the_simulator_api_is_absent_when_off(shared_server: ServerProcess, acct: Account) -> None:
    response = httpx.post(
        f"{shared_server.url}/v1/simulator/replies",
        json={"phone": "13800138000", "content": "hi"},
        headers={"Authorization": f"Bearer {acct.api_key}"},
        trust_env=False,
    )
    assert response.status_code == 404
    schema = httpx.get(f"{shared_server.url}/v1/openapi.json", trust_env=False).json()
    assert "/v1/simulator/replies" not in schema["paths"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_simulator_api_follows_the_product_routes_by_default(server: ServerProcess) -> None:
    """`auto`: on while a product routes to the built-in simulator, off once none does."""
    acct = server.create_account(10)

    def simulate() -> tuple[int, str]:
        answer = httpx.post(
            f"{server.url}/v1/simulator/replies",
            json={"phone": "13800138000", "content": "hi"},
            headers={"Authorization": f"Bearer {acct.api_key}"},
            trust_env=False,
        )
        return answer.status_code, answer.json()["message"]

    # On: the simulator looks for the account's message to that number (none was sent).
    status, message = simulate()
    assert status == 422, message
    server.cli("carrier", "add", "upstream", "--kind", "simulator")
    server.cli("product", "set", "general", "--carriers", "upstream")
    server.wait_synced()
    status, message = simulate()
    assert status == 404
    assert "the simulator API is off" in message
