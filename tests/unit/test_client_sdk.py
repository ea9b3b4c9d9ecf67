"""The SDK against httpx.MockTransport: requests on the wire, answers, errors, retries, bulk.

Every test runs with the sync Client and the AsyncClient (the ``sdk`` fixture)."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from smsgate import errors
from smsgate.client import (
    ApiError,
    AsyncClient,
    BadCredentials,
    BadPhone,
    Balance,
    Client,
    InsufficientBalance,
    QueryTooFrequent,
    SendOutcomeUnknown,
    TransportError,
    plan_batches,
)
from smsgate.client import exceptions as exc_module

API_KEY = "0123456789abcdef0123456789abcdef"
CONTENT = "【短信宝】验证码 4564 & a=b+c 100% ok\r\nnext line 😀 end "
Answer = str | httpx.Response | type[Exception]


class Script:
    """A MockTransport handler: answers in order (then ``0``), every request recorded."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else "0"
        if isinstance(answer, type):
            raise answer("scripted failure")
        return answer if isinstance(answer, httpx.Response) else httpx.Response(200, text=answer)

    def params(self, index: int = -1) -> dict[str, list[str]]:
        return parse_qs(self.requests[index].url.query.decode(), keep_blank_values=True)


class Sdk:
    """One client, sync or async, behind the same awaitable calls."""

    def __init__(self, client: Client | AsyncClient, script: Script) -> None:
        self.client, self.script = client, script

    async def __call__(self, method: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.client, method)(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result


MakeSdk = Callable[..., Sdk]


@pytest.fixture(params=["sync", "async"])
async def make_sdk(request: pytest.FixtureRequest) -> AsyncIterator[MakeSdk]:
    clients: list[Client | AsyncClient] = []

    def make(*answers: Answer, **options: Any) -> Sdk:
        script = Script(*answers)
        options = {"api_key": API_KEY, "retry_backoff": 0, **options}
        if "password" in options:
            del options["api_key"]
        cls = Client if request.param == "sync" else AsyncClient
        clients.append(cls("alice", transport=httpx.MockTransport(script), **options))
        return Sdk(clients[-1], script)

    yield make
    for client in clients:
        await client.aclose() if isinstance(client, AsyncClient) else client.close()


# ---- requests on the wire --------------------------------------------------------------


async def test_send_is_a_get_with_utf8_percent_encoded_params(make_sdk: MakeSdk) -> None:
    sdk = make_sdk()
    await sdk("send", ["13800138000", "13900139000"], CONTENT, product=12)
    request = sdk.script.requests[0]
    assert request.method == "GET"
    assert str(request.url).startswith("https://api.smsbao.com/sms?")
    assert sdk.script.params() == {
        "u": ["alice"],
        "p": [API_KEY],
        "m": ["13800138000,13900139000"],
        "g": ["12"],
        "c": [CONTENT],
    }
    raw = request.url.query.decode()
    assert "c=%E3%80%90%E7%9F%AD%E4%BF%A1%E5%AE%9D%E3%80%91" in raw
    assert "%20" in raw  # a space is %20 and a plus %2B: no ambiguity
    assert "+" not in raw
    for escape in ("%26", "%3D", "%25", "%0D%0A", "%F0%9F%98%80"):
        assert escape in raw


async def test_password_is_sent_as_lowercase_md5_hex(make_sdk: MakeSdk) -> None:
    sdk = make_sdk(password="Pässw0rd")
    await sdk("send", "13800138000", "hi")
    expected = hashlib.md5("Pässw0rd".encode()).hexdigest()
    assert sdk.script.params()["p"] == [expected]
    assert expected == expected.lower()


async def test_api_key_is_sent_as_is(make_sdk: MakeSdk) -> None:
    sdk = make_sdk(api_key="ABCdef0123456789ABCdef0123456789")
    await sdk("send", "13800138000", "hi")
    assert sdk.script.params()["p"] == ["ABCdef0123456789ABCdef0123456789"]


async def test_phones_as_a_string_are_split_and_rejoined(make_sdk: MakeSdk) -> None:
    sdk = make_sdk()
    await sdk("send", " 13800138000 ，13900139000, ", "hi")
    assert sdk.script.params()["m"] == ["13800138000,13900139000"]
    assert "g" not in sdk.script.params()


async def test_base_url_with_a_path_and_trailing_slash(make_sdk: MakeSdk) -> None:
    sdk = make_sdk(base_url="http://127.0.0.1:8080/smsbao/")
    await sdk("send", "13800138000", "hi")
    assert str(sdk.script.requests[0].url).startswith("http://127.0.0.1:8080/smsbao/sms?")


async def test_international_goes_to_wsms_with_the_plus_encoded(make_sdk: MakeSdk) -> None:
    sdk = make_sdk()
    await sdk("send_international", ["+12025550123", "+447700900123"], "hello")
    request = sdk.script.requests[0]
    assert request.url.path == "/wsms"
    assert "m=%2B12025550123%2C%2B447700900123" in request.url.query.decode()


async def test_voice_code(make_sdk: MakeSdk) -> None:
    sdk = make_sdk()
    await sdk("send_voice_code", "13800138000", 4564)
    assert sdk.script.requests[0].url.path == "/voice"
    assert sdk.script.params()["c"] == ["4564"]
    with pytest.raises(ValueError, match="4 to 8 digits"):
        await sdk("send_voice_code", "13800138000", "12a4")
    with pytest.raises(ValueError, match="exactly one number"):
        await sdk("send_voice_code", "13800138000,13900139000", "1234")
    assert len(sdk.script.requests) == 1


async def test_send_refuses_more_than_99_numbers_or_none(make_sdk: MakeSdk) -> None:
    sdk = make_sdk()
    with pytest.raises(ValueError, match="use send_bulk"):
        await sdk("send", [str(13800000000 + i) for i in range(100)], "hi")
    with pytest.raises(ValueError, match="no phone"):
        await sdk("send", " , ", "hi")
    await sdk("send", ["13800138000"] * 150, "hi")  # 1 distinct number: the server dedupes
    assert len(sdk.script.requests) == 1


def test_credentials_exactly_one_of_password_or_api_key() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Client("alice")
    with pytest.raises(ValueError, match="exactly one"):
        Client("alice", password="x", api_key=API_KEY)


def test_repr_shows_no_secret() -> None:
    client = Client("alice", password="hunter2")
    assert "hunter2" not in repr(client)
    assert hashlib.md5(b"hunter2").hexdigest() not in repr(client)
    client.close()


async def test_timeout_is_set_on_every_request(make_sdk: MakeSdk) -> None:
    sdk = make_sdk(timeout=3.5)
    await sdk("send", "13800138000", "hi")
    assert sdk.script.requests[0].extensions["timeout"] == httpx.Timeout(3.5).as_dict()


# ---- answers ---------------------------------------------------------------------------


async def test_query_parses_sent_and_remaining(make_sdk: MakeSdk) -> None:
    sdk = make_sdk("0\n12,34")
    assert await sdk("balance") == Balance(sent=12, remaining=34)
    assert sdk.script.requests[0].url.path == "/query"
    assert sdk.script.params() == {"u": ["alice"], "p": [API_KEY]}


@pytest.mark.parametrize("body", ["0\r\n12,34\r\n", "0\n 12 , 34 "])
async def test_query_tolerates_whitespace(make_sdk: MakeSdk, body: str) -> None:
    assert await make_sdk(body)("balance") == Balance(12, 34)


@pytest.mark.parametrize("body", ["0", "0\n12", "0\nabc,1", ""])
async def test_query_malformed_success_raises_api_error(make_sdk: MakeSdk, body: str) -> None:
    with pytest.raises(ApiError) as caught:
        await make_sdk(body)("balance")
    assert type(caught.value) is ApiError
    assert caught.value.body == body


async def test_query_error_code(make_sdk: MakeSdk) -> None:
    with pytest.raises(QueryTooFrequent):
        await make_sdk("44")("balance")


ERROR_ROWS = [row for row in errors.WIRE_CODES if row is not errors.OK]


@pytest.mark.parametrize("row", ERROR_ROWS, ids=lambda row: row.wire)
async def test_every_wire_code_raises_its_exception(
    make_sdk: MakeSdk, row: errors.ErrorCode
) -> None:
    with pytest.raises(ApiError) as caught:
        await make_sdk(row.wire)("send", "13800138000", "hi")
    error = caught.value
    assert type(error) is exc_module.BY_WIRE[row.wire]
    assert type(error).error_code is row
    assert (error.code, error.message, error.message_zh) == (row.wire, row.message, row.message_zh)
    assert str(error).startswith(f"{row.wire}: {row.message} ({row.message_zh})")


def test_the_exception_table_covers_the_code_table_with_the_names_of_the_issue() -> None:
    names = {
        "-1": "ParamsIncomplete", "30": "BadCredentials", "40": "NoAccount",
        "41": "InsufficientBalance", "42": "AccountInactive", "43": "IpNotAllowed",
        "44": "QueryTooFrequent", "50": "SensitiveWord", "51": "BadPhone", "52": "BadSignature",
        "53": "FrequencyLimit", "54": "TemplateRequired", "55": "BadProduct",
        "56": "ContentTooLong", "57": "OptedOut",
    }  # fmt: skip
    assert {wire: cls.__name__ for wire, cls in exc_module.BY_WIRE.items()} == names
    assert set(names) == {row.wire for row in ERROR_ROWS}
    for cls in exc_module.BY_WIRE.values():
        assert cls.__name__ in (exc_module.__doc__ or "")


@pytest.mark.parametrize("body", ["OK", "<html>Bad Gateway</html>", "60", "", "0 0"])
async def test_an_unknown_body_raises_api_error_with_the_raw_body(
    make_sdk: MakeSdk, body: str
) -> None:
    with pytest.raises(ApiError) as caught:
        await make_sdk(body)("send", "13800138000", "hi")
    assert type(caught.value) is ApiError
    assert caught.value.body == body


async def test_a_bare_zero_with_whitespace_is_accepted(make_sdk: MakeSdk) -> None:
    await make_sdk("0\n")("send", "13800138000", "hi")


# ---- JSON API (smsgate only) -----------------------------------------------------------


async def test_messages_sends_filters_and_the_bearer_key(make_sdk: MakeSdk) -> None:
    items = [{"id": "01H", "phone": "13800138000", "state": "delivered"}]
    sdk = make_sdk(httpx.Response(200, json={"items": items, "next_cursor": 41}))
    page = await sdk("messages", phone="13800138000", state="delivered", limit=50)
    assert page == items
    assert page.next_cursor == "41"
    request = sdk.script.requests[0]
    assert request.url.path == "/v1/messages"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert sdk.script.params() == {
        "phone": ["13800138000"],
        "state": ["delivered"],
        "limit": ["50"],
    }


async def test_message_and_replies(make_sdk: MakeSdk) -> None:
    sdk = make_sdk(httpx.Response(200, json={"id": "a/b"}), httpx.Response(200, json=[]))
    assert await sdk("message", "a/b") == {"id": "a/b"}
    assert sdk.script.requests[0].url.raw_path == b"/v1/messages/a%2Fb"
    page = await sdk("replies", account="alice")
    assert (page, page.next_cursor) == ([], None)
    assert sdk.script.requests[1].url.path == "/v1/replies"


async def test_unknown_filter_is_a_type_error(make_sdk: MakeSdk) -> None:
    with pytest.raises(TypeError, match="colour"):
        await make_sdk()("messages", colour="red")


async def test_json_api_needs_an_api_key(make_sdk: MakeSdk) -> None:
    with pytest.raises(ValueError, match="api_key"):
        await make_sdk(password="pw")("messages")


async def test_json_error_maps_the_slug_to_its_class(make_sdk: MakeSdk) -> None:
    body = {"code": "insufficient_balance", "message": "Insufficient balance", "detail": "need 3"}
    sdk = make_sdk(httpx.Response(402, json=body))
    with pytest.raises(InsufficientBalance) as caught:
        await sdk("messages")
    assert (caught.value.code, caught.value.detail, caught.value.status_code) == (
        "41",
        "need 3",
        402,
    )
    assert caught.value.message_zh == "余额不足"


async def test_json_error_with_an_unknown_slug(make_sdk: MakeSdk) -> None:
    sdk = make_sdk(httpx.Response(404, json={"code": "not_found", "message": "No such message"}))
    with pytest.raises(ApiError) as caught:
        await sdk("message", 7)
    assert type(caught.value) is ApiError
    assert (caught.value.code, caught.value.message, caught.value.status_code) == (
        "not_found",
        "No such message",
        404,
    )


async def test_json_error_that_is_not_json(make_sdk: MakeSdk) -> None:
    with pytest.raises(ApiError) as caught:
        await make_sdk(httpx.Response(404, text="Not Found"))("replies")
    assert (caught.value.status_code, caught.value.body) == (404, "Not Found")


# ---- retries -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [httpx.ReadTimeout, httpx.WriteTimeout, httpx.ReadError, httpx.RemoteProtocolError],
)
async def test_a_send_is_never_sent_again_after_it_may_have_arrived(
    make_sdk: MakeSdk, failure: type[Exception]
) -> None:
    sdk = make_sdk(failure, retries=5)
    with pytest.raises(SendOutcomeUnknown) as caught:
        await sdk("send", ["13800138000", "13900139000"], "hi")
    assert len(sdk.script.requests) == 1
    assert caught.value.phones == ("13800138000", "13900139000")
    assert isinstance(caught.value.__cause__, failure)
    assert "may have been accepted" in str(caught.value)


async def test_a_gateway_error_on_a_send_is_an_unknown_outcome(make_sdk: MakeSdk) -> None:
    sdk = make_sdk(httpx.Response(504, text="Gateway Timeout"))
    with pytest.raises(SendOutcomeUnknown):
        await sdk("send", "13800138000", "hi")
    assert len(sdk.script.requests) == 1


@pytest.mark.parametrize("failure", [httpx.ConnectError, httpx.ConnectTimeout])
async def test_a_send_is_retried_when_the_connection_never_opened(
    make_sdk: MakeSdk, failure: type[Exception]
) -> None:
    sdk = make_sdk(failure, failure, "0")
    await sdk("send", "13800138000", "hi")
    assert len(sdk.script.requests) == 3


async def test_a_send_that_cannot_connect_is_a_transport_error_not_unknown(
    make_sdk: MakeSdk,
) -> None:
    sdk = make_sdk(*[httpx.ConnectError] * 3, retries=2)
    with pytest.raises(TransportError) as caught:
        await sdk("send", "13800138000", "hi")
    assert type(caught.value) is TransportError
    assert len(sdk.script.requests) == 3
    assert API_KEY not in str(caught.value)  # the query holds the credentials


async def test_balance_is_retried_on_a_connect_error(make_sdk: MakeSdk) -> None:
    sdk = make_sdk(httpx.ConnectError, "0\n5,6")
    assert await sdk("balance") == Balance(5, 6)
    assert len(sdk.script.requests) == 2


async def test_balance_is_not_retried_after_a_read_timeout(make_sdk: MakeSdk) -> None:
    # the server may have counted the query: a retry would only earn a 44
    sdk = make_sdk(httpx.ReadTimeout, "0\n5,6")
    with pytest.raises(TransportError) as caught:
        await sdk("balance")
    assert not isinstance(caught.value, SendOutcomeUnknown)
    assert len(sdk.script.requests) == 1


async def test_json_gets_are_retried_on_any_transport_error(make_sdk: MakeSdk) -> None:
    sdk = make_sdk(httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.Response(200, json=[]))
    assert await sdk("replies") == []
    assert len(sdk.script.requests) == 3


async def test_retries_zero_means_one_attempt(make_sdk: MakeSdk) -> None:
    sdk = make_sdk(httpx.ConnectError, "0\n1,1", retries=0)
    with pytest.raises(TransportError):
        await sdk("balance")
    assert len(sdk.script.requests) == 1


# ---- bulk --------------------------------------------------------------------------------

NUMBERS = [str(13000000000 + i) for i in range(250)]


def test_plan_splits_250_numbers_into_99_99_52() -> None:
    batches = plan_batches(NUMBERS)
    assert [len(b.phones) for b in batches] == [99, 99, 52]
    assert [b.index for b in batches] == [0, 1, 2]
    assert [p for b in batches for p in b.phones] == NUMBERS


def test_plan_drops_repeats_and_keeps_order() -> None:
    batches = plan_batches(["3", "1", "3", "2", "1"], batch_size=2)
    assert [b.phones for b in batches] == [("3", "1"), ("2",)]
    with pytest.raises(ValueError, match="batch_size"):
        plan_batches(NUMBERS, batch_size=100)


async def test_send_bulk_sends_each_batch_and_reports_each(make_sdk: MakeSdk) -> None:
    sdk = make_sdk("0", "41", httpx.ReadTimeout)
    results = await sdk("send_bulk", NUMBERS + NUMBERS[:10], "hi")
    assert [m.count(",") + 1 for m in (sdk.script.params(i)["m"][0] for i in range(3))] == [
        99,
        99,
        52,
    ]
    assert [r.index for r in results] == [0, 1, 2]
    assert [r.ok for r in results] == [True, False, False]
    assert isinstance(results[1].error, InsufficientBalance)
    assert results[2].outcome_unknown
    assert results[2].phones == tuple(NUMBERS[198:])


async def test_send_bulk_can_stop_at_the_first_failure(make_sdk: MakeSdk) -> None:
    sdk = make_sdk("0", "30")
    results = await sdk("send_bulk", NUMBERS, "hi", stop_on_error=True)
    assert [type(r.error) for r in results] == [type(None), BadCredentials]
    assert len(sdk.script.requests) == 2


async def test_send_bulk_with_a_smaller_batch_size(make_sdk: MakeSdk) -> None:
    sdk = make_sdk("0", "51")
    results = await sdk("send_bulk", NUMBERS[:15], "hi", batch_size=10)
    assert [len(r.phones) for r in results] == [10, 5]
    assert isinstance(results[1].error, BadPhone)
