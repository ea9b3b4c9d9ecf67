"""Reply pushes: parsing, handle_push, and the ASGI ReplyReceiver driven through httpx."""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest

from smsgate.client import Reply, ReplyReceiver, handle_push, handle_push_async, parse_push

PHONE = "13800138000"
CONTENTS = [
    "退订",
    "好的，明天见😀👍🏽",
    "a&b=c+d%20e%",
    "line one\nline two\r\nthree\n",
    "  leading and trailing spaces  ",
    "TD",
    "100%+1=?&m=13900139000&c=spoof",
]


def push_query(content: str, encoder: str = "quote_plus", **extra: str) -> str:
    """How a platform builds the push query (``quote_plus`` is PHP's urlencode)."""
    params = {**extra, "m": PHONE, "c": content}
    if encoder == "quote_plus":
        return urlencode(params)
    return "&".join(f"{key}={quote(value, safe='')}" for key, value in params.items())


class Inbox:
    def __init__(self, fail: bool = False) -> None:
        self.replies: list[Reply] = []
        self.threads: set[int] = set()
        self.fail = fail

    def __call__(self, reply: Reply) -> None:
        self.threads.add(threading.get_ident())
        self.replies.append(reply)
        if self.fail:
            raise RuntimeError("database down")


class AsyncInbox(Inbox):
    async def __call__(self, reply: Reply) -> None:  # type: ignore[override]
        super().__call__(reply)


# ---- parsing -----------------------------------------------------------------------------


@pytest.mark.parametrize("content", CONTENTS)
@pytest.mark.parametrize("encoder", ["quote_plus", "quote"])
def test_content_survives_byte_exact(content: str, encoder: str) -> None:
    reply = parse_push(push_query(content, encoder))
    assert reply.content == content
    assert reply.content.encode() == content.encode()
    assert reply.phone == PHONE


def test_raw_query_bytes_and_unencoded_utf8() -> None:
    query = push_query("你好 & bye")
    assert parse_push(query.encode()).content == "你好 & bye"
    assert parse_push(f"m={PHONE}&c=你好".encode()).content == "你好"


def test_a_bare_plus_is_a_space_and_percent_2b_a_plus() -> None:
    assert parse_push(f"m={PHONE}&c=a+b%2Bc").content == "a b+c"


def test_params_of_the_push_url_itself_are_kept() -> None:
    reply = parse_push(push_query("hi", token="s3cret"))
    assert reply.params["token"] == "s3cret"
    assert reply.raw_query.startswith("token=s3cret&")


@pytest.mark.parametrize(
    "query", ["", "m=&c=hi", "c=hi", f"m={PHONE}", b"m=1&c=%FF", b"m=1&c=\xff"]
)
def test_missing_or_broken_params_answer_non_zero(query: str | bytes) -> None:
    inbox = Inbox()
    answer = handle_push(query, inbox)
    assert answer != "0"
    assert inbox.replies == []


def test_an_empty_reply_text_is_still_a_reply() -> None:
    inbox = Inbox()
    assert handle_push(f"m={PHONE}&c=", inbox) == "0"
    assert inbox.replies[0].content == ""


# ---- handle_push ---------------------------------------------------------------------------


def test_handle_push_answers_zero_when_the_callback_returns() -> None:
    inbox = Inbox()
    assert handle_push(push_query(CONTENTS[2]), inbox) == "0"
    assert inbox.replies == [Reply(PHONE, CONTENTS[2], push_query(CONTENTS[2]))]


def test_handle_push_answers_error_when_the_callback_raises() -> None:
    assert handle_push(push_query("hi"), Inbox(fail=True)) == "error"


def test_handle_push_refuses_an_async_callback() -> None:
    with pytest.raises(TypeError, match="handle_push_async"):
        handle_push(push_query("hi"), AsyncInbox())


@pytest.mark.parametrize("cls", [Inbox, AsyncInbox])
async def test_handle_push_async_takes_both_kinds(cls: type[Inbox]) -> None:
    ok, failing = cls(), cls(fail=True)
    assert await handle_push_async(push_query("hi"), ok) == "0"
    assert await handle_push_async(push_query("hi"), failing) == "error"
    assert ok.replies[0].content == "hi"


# ---- the ASGI app --------------------------------------------------------------------------


def receiver_client(callback: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=ReplyReceiver(callback))
    return httpx.AsyncClient(transport=transport, base_url="http://receiver.test")


@pytest.mark.parametrize("cls", [Inbox, AsyncInbox])
@pytest.mark.parametrize("content", CONTENTS)
async def test_receiver_answers_200_zero_and_gets_the_exact_text(
    cls: type[Inbox], content: str
) -> None:
    inbox = cls()
    async with receiver_client(inbox) as http:
        response = await http.get(f"/sms/mo?{push_query(content)}")
    assert (response.status_code, response.text) == (200, "0")
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert [r.content for r in inbox.replies] == [content]


async def test_receiver_runs_a_sync_callback_in_a_worker_thread() -> None:
    inbox = Inbox()
    async with receiver_client(inbox) as http:
        await http.get(f"/?{push_query('hi')}")
    assert inbox.threads
    assert threading.get_ident() not in inbox.threads


async def test_a_plain_async_function_callback() -> None:
    seen: list[str] = []

    async def on_reply(reply: Reply) -> None:
        seen.append(reply.content)

    async with receiver_client(on_reply) as http:
        response = await http.get(f"/?{push_query('好')}")
    assert (response.status_code, seen) == (200, ["好"])


@pytest.mark.parametrize("cls", [Inbox, AsyncInbox])
async def test_receiver_answers_500_when_the_callback_raises(cls: type[Inbox]) -> None:
    async with receiver_client(cls(fail=True)) as http:
        response = await http.get(f"/?{push_query('hi')}")
    assert response.status_code == 500
    assert response.text not in ("0", "")


async def test_receiver_answers_400_without_m_or_c() -> None:
    inbox = Inbox()
    async with receiver_client(inbox) as http:
        response = await http.get("/?m=13800138000")
    assert response.status_code == 400
    assert response.text != "0"
    assert inbox.replies == []


async def test_receiver_answers_405_to_other_methods() -> None:
    inbox = Inbox()
    async with receiver_client(inbox) as http:
        response = await http.post(f"/?{push_query('hi')}")
    assert response.status_code == 405
    assert inbox.replies == []


async def test_receiver_acknowledges_lifespan() -> None:
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await ReplyReceiver(Inbox())({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
