"""The cmpp carrier against a scripted ISMG on a real socket: the edges a well-behaved peer
(smsgate's own server, tests/e2e/test_cmpp_carrier.py) never shows.

- a status report that arrives before its SUBMIT_RESP: the submit still completes, the
  report reaches the sink, and the DELIVER_RESP is written only after the sink returned;
- a SUBMIT never answered: `unknown`, never a retry; Result 8: not taken (retry);
  another Result: failed; no link: not taken, the carrier at fault;
- a wrong AuthenticatorISMG: the link is not used; several connections, the tps limit and
  ACTIVE_TEST when idle.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from smsgate.carriers.cmpp import codec
from smsgate.carriers.cmpp.client import ClientConfig, CmppCarrier
from smsgate.carriers.cmpp.codec import Command, Version
from smsgate.core.messages import DeliveryReport, Kind, Outgoing
from smsgate.core.replies import IncomingReply

SECRET = "ismg-secret"
MSG_ID = codec.make_msg_id(12, 4, 5, 30, 15, 7, 1)


@dataclass
class Ismg:
    """Answers CONNECT, then SUBMITs as ``mode`` says; logs what happens, in order."""

    mode: str = "report_first"
    forge_auth: bool = False
    events: list[str] = field(default_factory=list)
    server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                header = codec.parse_header(await reader.readexactly(12))
                body = await reader.readexactly(header.length - 12)
                await self.answer(writer, header, body)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def answer(self, writer: asyncio.StreamWriter, header: codec.Header, body: bytes) -> None:
        v = Version.V3
        if header.command == Command.CONNECT:
            self.events.append("connect")
            c = codec.decode_connect(body)
            auth = codec.authenticator_ismg(0, c.authenticator, SECRET, v)
            auth = b"\0" * 16 if self.forge_auth else auth
            resp = codec.encode_connect_resp(codec.ConnectResp(0, auth, 0x30), v)
            writer.write(codec.frame(Command.CONNECT_RESP, header.sequence, resp))
        elif header.command == Command.SUBMIT:
            await self.submitted(writer, header.sequence, codec.decode_submit(body, v))
        elif header.command == Command.DELIVER_RESP:
            self.events.append("deliver_resp")
        elif header.command == Command.ACTIVE_TEST:
            self.events.append("active_test")
            writer.write(codec.frame(Command.ACTIVE_TEST_RESP, header.sequence, b"\0"))
        await writer.drain()

    async def submitted(self, writer: asyncio.StreamWriter, seq: int, s: codec.Submit) -> None:
        v = Version.V3
        self.events.append("submit")
        if self.mode == "silent":
            return
        if self.mode == "report_first":
            phone = s.dest_terminal_ids[0]
            report = codec.StatusReport(MSG_ID, "DELIVRD", "2612040530", "2612040531", phone)
            content = codec.encode_report(report, v)
            deliver = codec.Deliver(MSG_ID, "10690001", phone, content, registered_delivery=1)
            writer.write(codec.frame(Command.DELIVER, 99, codec.encode_deliver(deliver, v)))
            await writer.drain()
            await asyncio.sleep(0.2)
        result = {"busy": 8, "refuse": 13}.get(self.mode, 0)
        resp = codec.encode_resp(codec.Resp(MSG_ID, result), v)
        writer.write(codec.frame(Command.SUBMIT_RESP, seq, resp))


class Sink:
    """Like the dispatcher: a report waits until its submit's outcome is recorded."""

    def __init__(self, ismg: Ismg) -> None:
        self.ismg = ismg
        self.recorded = asyncio.Event()
        self.reports: list[DeliveryReport] = []

    async def delivery_report(self, report: DeliveryReport) -> None:
        await self.recorded.wait()
        self.reports.append(report)
        self.ismg.events.append("report_committed")

    async def incoming(self, reply: IncomingReply) -> None:
        raise AssertionError("no replies in these tests")


@pytest.fixture
async def ismg() -> AsyncIterator[Ismg]:
    peer = Ismg()
    peer.server = await asyncio.start_server(peer.handle, "127.0.0.1", 0)
    yield peer
    peer.server.close()


async def started(ismg: Ismg, **overrides: float) -> tuple[CmppCarrier, Sink]:
    config = ClientConfig(
        host="127.0.0.1", port=ismg.port, sp_id="300250", secret=SECRET, version=Version.V3,
        response_timeout=overrides.get("response_timeout", 2.0),
        active_test_seconds=overrides.get("active_test_seconds", 5.0),
        connections=int(overrides.get("connections", 1)), tps=overrides.get("tps", 0.0),
    )  # fmt: skip
    carrier = CmppCarrier("cmcc", config)
    sink = Sink(ismg)
    await carrier.start(sink)
    for _ in range(100):
        if carrier.status()["links_up"] == config.connections:
            break
        await asyncio.sleep(0.02)
    return carrier, sink


MESSAGE = Outgoing(id=1, phone="13800138000", content="【测试】你好", kind=Kind.SMS, units=1)


async def test_report_before_submit_resp(ismg: Ismg) -> None:
    carrier, sink = await started(ismg)
    try:
        [result] = await carrier.submit([MESSAGE])
        assert result.carrier_ref == codec.msg_id_text(MSG_ID)
        sink.recorded.set()  # the dispatcher records the carrier_ref now
        for _ in range(100):
            if "deliver_resp" in ismg.events:
                break
            await asyncio.sleep(0.02)
        assert [r.carrier_ref for r in sink.reports] == [codec.msg_id_text(MSG_ID)]
        assert ismg.events == ["connect", "submit", "report_committed", "deliver_resp"]
    finally:
        await carrier.stop()


async def test_unanswered_submit_is_unknown(ismg: Ismg) -> None:
    ismg.mode = "silent"
    carrier, _ = await started(ismg, response_timeout=0.3)
    try:
        [result] = await carrier.submit([MESSAGE])
        assert result.unknown is not None
        assert result.carrier_ref is None
        assert result.retry_after is None
        assert ismg.events == ["connect", "submit"]  # sent once
    finally:
        await carrier.stop()


@pytest.mark.parametrize(
    ("mode", "retry", "error"), [("busy", True, None), ("refuse", False, "CMPP Result 13")]
)
async def test_refusals(ismg: Ismg, mode: str, retry: bool, error: str | None) -> None:
    ismg.mode = mode
    carrier, _ = await started(ismg)
    try:
        [result] = await carrier.submit([MESSAGE])
        assert (result.retry_after is not None) is retry
        assert result.error == error
        assert result.carrier_ref is None
    finally:
        await carrier.stop()


async def test_forged_ismg_is_not_used(ismg: Ismg) -> None:
    ismg.forge_auth = True
    carrier, _ = await started(ismg)
    try:
        assert carrier.status()["links_up"] == 0
        assert "AuthenticatorISMG" in str(carrier.status()["last_error"])
        [result] = await carrier.submit([MESSAGE])
        assert result.retry_after is not None
        assert result.fault
        assert "submit" not in ismg.events
    finally:
        await carrier.stop()


async def test_a_message_that_cannot_be_written_fails_alone(ismg: Ismg) -> None:
    ismg.mode = "plain"
    carrier, _ = await started(ismg)
    try:
        too_long = Outgoing(id=2, phone="13800138000", content="【测试】你好", kind=Kind.SMS,
                            units=1, ext_code="1" * 30)  # fmt: skip
        bad, good = await carrier.submit([too_long, MESSAGE])
        assert bad.error is not None
        assert "not sendable" in bad.error
        assert good.carrier_ref == codec.msg_id_text(MSG_ID)
    finally:
        await carrier.stop()


async def test_connections_tps_and_active_test(ismg: Ismg) -> None:
    ismg.mode = "plain"
    carrier, _ = await started(ismg, connections=2, tps=20.0, active_test_seconds=0.2)
    try:
        assert carrier.status()["links_up"] == 2
        assert ismg.events.count("connect") == 2
        batch = [Outgoing(id=i, phone="13800138000", content="【测试】限速", kind=Kind.SMS,
                          units=1) for i in range(10)]  # fmt: skip
        began = asyncio.get_running_loop().time()
        results = await carrier.submit(batch)
        took = asyncio.get_running_loop().time() - began
        assert all(r.carrier_ref for r in results)
        assert took >= 9 / 20 - 0.05  # 20 a second: the tenth waits for its slot
        await asyncio.sleep(0.6)  # idle: each link sends ACTIVE_TEST
        assert ismg.events.count("active_test") >= 2
        assert carrier.status()["links_up"] == 2  # answered: the links stay
    finally:
        await carrier.stop()
