"""Property tests against the running server: any input gets a documented answer.

- the SMSBao wire (hypothesis): any bytes in any parameter, by GET or POST, give HTTP 200
  and a code of the table (errors.py), never an exception or a 5xx;
- the JSON API (schemathesis over its own OpenAPI): no 5xx, whatever the input.

Examples are few (a few hundred requests in all) to keep the suite quick; bench/fuzz.py
sends 100,000.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote_from_bytes

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smsgate import errors
from tests.e2e.server_support import Account, ServerProcess

pytestmark = pytest.mark.backends("sqlite")

WIRE_CODES = {code.wire for code in errors.WIRE_CODES}
PATHS = ("/sms", "/wsms", "/voice", "/query")
NAMES = ("u", "p", "m", "c", "g")
EXAMPLES = settings(
    max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None
)


@pytest.fixture(scope="module")
def shared_server_env() -> dict[str, str]:
    return {  # every request comes from 127.0.0.1: keep the login limits out of the way
        "SMSGATE_LOGIN_FAILURES_PER_IP": "1000000",
        "SMSGATE_LOGIN_FAILURES_PER_ACCOUNT": "1000000",
        "SMSGATE_LOGIN_FAILURES_PER_NETWORK": "1000000",
        "SMSGATE_QUERY_INTERVAL_SECONDS": "0",
    }


@pytest.fixture(scope="module")
def fuzzed(shared_server: ServerProcess) -> Iterator[tuple[ServerProcess, Account, httpx.Client]]:
    account = shared_server.create_account(balance=1_000_000)
    with httpx.Client(base_url=shared_server.url, timeout=30, trust_env=False) as client:
        yield shared_server, account, client


def _answer(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    body = response.text
    if body.startswith("0\n"):  # a balance
        sent, _, remaining = body[2:].partition(",")
        assert sent.isdigit(), body
        assert remaining.isdigit(), body
        return "0"
    assert body in WIRE_CODES, body
    return body


values = st.one_of(st.binary(max_size=80), st.text(max_size=40).map(str.encode))


@given(
    path=st.sampled_from(PATHS),
    fuzzed_params=st.dictionaries(st.sampled_from(NAMES), values, max_size=5),
    credentials=st.booleans(),
    post=st.booleans(),
)
@EXAMPLES
def test_any_bytes_in_any_parameter_give_a_documented_code(
    fuzzed: tuple[ServerProcess, Account, httpx.Client],
    path: str,
    fuzzed_params: dict[str, bytes],
    credentials: bool,
    post: bool,
) -> None:
    _, account, client = fuzzed
    params = {"u": account.username.encode(), "p": account.api_key.encode()} if credentials else {}
    params.update(fuzzed_params)
    encoded = "&".join(f"{k}={quote_from_bytes(v, safe='')}" for k, v in params.items())
    if post:
        headers = {"content-type": "application/x-www-form-urlencoded"}
        response = client.post(path, content=encoded.encode(), headers=headers)
    else:
        response = client.get(f"{path}?{encoded}")
    _answer(response)


@given(raw=st.binary(max_size=200), path=st.sampled_from(PATHS))
@EXAMPLES
def test_any_raw_query_string_gives_a_documented_code(
    fuzzed: tuple[ServerProcess, Account, httpx.Client], raw: bytes, path: str
) -> None:
    _, _, client = fuzzed
    _answer(client.get(f"{path}?{quote_from_bytes(raw, safe='=&%+')}"))


# -- the JSON API against its own schema ---------------------------------------------------


def test_the_json_api_never_answers_5xx(
    fuzzed: tuple[ServerProcess, Account, httpx.Client],
) -> None:
    server, account, _ = fuzzed
    schema = schemathesis.openapi.from_url(f"{server.url}/v1/openapi.json")
    auth = {"authorization": f"Bearer {account.api_key}"}
    checked = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        def no_server_error(case: schemathesis.Case) -> None:
            response = case.call(base_url=server.url, headers=auth)
            assert response.status_code < 500, (case.method, case.formatted_path, response.text)

        no_server_error()
        checked.append(f"{operation.method.upper()} {operation.path}")
    assert "GET /v1/messages/{message_id}" in checked
