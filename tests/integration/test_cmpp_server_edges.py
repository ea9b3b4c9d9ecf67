"""The CMPP server's protocol edges on a real socket, with a scripted backend standing in
for the send path (the e2e tests run it with the real one): the window, Msg_src, malformed
and Pk_total-only long SUBMITs, ACTIVE_TEST, TERMINATE, a version above 3.0."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import pytest

from smsgate import errors
from smsgate.carriers.cmpp import codec
from smsgate.carriers.cmpp.codec import Command, Version
from smsgate.carriers.cmpp.server import CmppServer, ServerConfig
from smsgate.core.accounts import Account, AccountStatus
from smsgate.core.cmpp import ConnectStatus, DueReply, DueReport, Login

SP, SECRET = "300250", "shh"
ACCOUNT = Account(1, "acme", "x", AccountStatus.ACTIVE, None, (), frozenset(),
                  cmpp_sp_id=SP, cmpp_secret=SECRET)  # fmt: skip


class Backend:
    def __init__(self) -> None:
        self.accepted: list[tuple[tuple[str, ...], str, list[str]]] = []
        self.hold = asyncio.Event()
        self.hold.set()

    def login(self, sp_id: str, authenticator: bytes, timestamp: int, ip: str) -> Login:
        ok = authenticator == codec.authenticator_source(SP, SECRET, timestamp)
        return (
            Login(ConnectStatus.OK, ACCOUNT)
            if sp_id == SP and ok
            else Login(ConnectStatus.AUTH_FAILED)
        )

    async def submit(
        self,
        account: Account,
        phones: Sequence[str],
        content: str,
        product: str,
        ip: str,
        msg_ids: Sequence[str],
    ) -> int:
        await self.hold.wait()
        if "bad" in content:
            raise errors.Rejected(errors.SENSITIVE_WORD)
        self.accepted.append((tuple(phones), content, list(msg_ids)))
        return 1

    async def due(self, account_id: int, after: int) -> list[DueReport]:
        return []

    async def done(self, row_ids: Sequence[int]) -> None:
        pass

    async def due_replies(self, account_id: int) -> list[DueReply]:
        return []

    async def replies_done(self, row_ids: Sequence[int]) -> None:
        pass


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.seq = reader, writer, 0
        self.version = Version.V3

    async def send(self, command: Command, body: bytes = b"") -> int:
        self.seq += 1
        self.writer.write(codec.frame(command, self.seq, body))
        await self.writer.drain()
        return self.seq

    async def read(self) -> tuple[codec.Header, bytes]:
        header = codec.parse_header(await asyncio.wait_for(self.reader.readexactly(12), 5))
        return header, await self.reader.readexactly(header.length - 12)

    async def login(self, version: int = 0x30) -> codec.ConnectResp:
        stamp = 1204053015
        auth = codec.authenticator_source(SP, SECRET, stamp)
        await self.send(
            Command.CONNECT, codec.encode_connect(codec.Connect(SP, auth, version, stamp))
        )
        _, body = await self.read()
        return codec.decode_connect_resp(body, codec.version_of(version))

    async def submit(self, text: str, **kw: object) -> int:
        fields: dict[str, object] = {"msg_src": SP, "src_id": "106900",
                                     "dest_terminal_ids": ("13800138000",),
                                     "msg_content": text.encode("utf-16-be")}  # fmt: skip
        fields.update(kw)
        body = codec.encode_submit(codec.Submit(**fields), self.version)  # type: ignore[arg-type]
        return await self.send(Command.SUBMIT, body)

    async def result(self) -> tuple[int, int]:
        header, body = await self.read()
        assert header.command == Command.SUBMIT_RESP
        return header.sequence, codec.decode_resp(body, self.version).result


@pytest.fixture
async def served() -> AsyncIterator[tuple[CmppServer, Backend]]:
    backend = Backend()
    server = CmppServer(backend, ServerConfig(port=0, window=2), lambda: datetime.now(UTC))
    await server.start()
    yield server, backend
    await server.stop()


@pytest.fixture
async def client(served: tuple[CmppServer, Backend]) -> AsyncIterator[Client]:
    reader, writer = await asyncio.open_connection("127.0.0.1", served[0].port)
    c = Client(reader, writer)
    yield c
    writer.close()


async def test_login_answers_with_our_authenticator(client: Client) -> None:
    resp = await client.login()
    assert resp.status == 0
    source = codec.authenticator_source(SP, SECRET, 1204053015)
    assert resp.authenticator == codec.authenticator_ismg(0, source, SECRET, Version.V3)


async def test_version_above_3_is_refused(client: Client) -> None:
    assert (await client.login(0x40)).status == ConnectStatus.VERSION_TOO_HIGH


async def test_window_overflow_is_flow_control(
    client: Client, served: tuple[CmppServer, Backend]
) -> None:
    await client.login()
    backend = served[1]
    backend.hold.clear()  # the first two SUBMITs stay in the send path
    for n in range(3):
        await client.submit(f"【签名】第{n}条")
    assert await client.result() == (4, 8)  # the third: Result 8 at once
    backend.hold.set()
    assert sorted([await client.result(), await client.result()]) == [(2, 0), (3, 0)]


async def test_refusal_msg_src_and_malformed(client: Client) -> None:
    await client.login()
    await client.submit("含bad的内容")
    assert (await client.result())[1] == 50
    await client.submit("x", msg_src="999999")
    assert (await client.result())[1] == 11
    await client.send(Command.SUBMIT, b"\0" * 20)
    assert (await client.result())[1] == 1


async def test_pk_total_without_udh_is_reassembled(
    client: Client, served: tuple[CmppServer, Backend]
) -> None:
    await client.login()
    await client.submit("后半", pk_total=2, pk_number=2)
    await client.submit("前半", pk_total=2, pk_number=1)
    results = [await client.result(), await client.result()]
    assert [r for _, r in results] == [0, 0]
    [(_phones, text, msg_ids)] = served[1].accepted
    assert text == "前半后半"
    assert len(msg_ids) == 2


async def test_active_test_and_terminate(client: Client) -> None:
    await client.login()
    seq = await client.send(Command.ACTIVE_TEST)
    header, body = await client.read()
    assert (header.command, header.sequence, body) == (Command.ACTIVE_TEST_RESP, seq, b"\0")
    seq = await client.send(Command.TERMINATE)
    header, _ = await client.read()
    assert (header.command, header.sequence) == (Command.TERMINATE_RESP, seq)
    assert await client.reader.read() == b""  # and the server hangs up


async def test_malformed_connect_is_status_1(client: Client) -> None:
    await client.send(Command.CONNECT, b"3002")  # cut short
    header, body = await client.read()
    assert header.command == Command.CONNECT_RESP
    assert codec.decode_connect_resp(body, Version.V2).status == ConnectStatus.BAD_STRUCTURE
    assert await client.reader.read() == b""
