"""The SMPP carrier over a real socket to a scripted in-process SMSC: the window and its
sequence matching, throttling, refusals, a dropped link, the deliver_sm answer order.

(The independent SMSC, the npm package `smpp`, is in tests/e2e/test_smpp_e2e.py.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from smsgate.carriers.smpp.carrier import SmppCarrier, SmppConfig
from smsgate.carriers.smpp.pdu import Cmd, Framer, Pdu, ShortMessage, Status, message_id_of
from smsgate.carriers.smpp.session import SessionConfig
from smsgate.core.messages import DeliveryReport, Kind, Outgoing
from smsgate.core.replies import IncomingReply

Policy = Callable[["FakeSmsc", Pdu], int | None]  # a status to answer now, None: hold it


class FakeSmsc:
    def __init__(self) -> None:
        self.policy: Policy = lambda smsc, pdu: Status.OK
        self.submits: list[Pdu] = []
        self.held: list[tuple[asyncio.StreamWriter, Pdu]] = []
        self.answers: list[Pdu] = []  # what the ESME answered (deliver_sm_resp, ...)
        self.writers: list[asyncio.StreamWriter] = []
        self.binds = 0
        self.bind_status = 0
        self.bound_as: list[tuple[Cmd, asyncio.StreamWriter]] = []
        self.submitted_on: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        framer = Framer()
        while data := await reader.read(65536):
            for pdu in framer.feed(data):
                self._handle(writer, pdu)
        writer.close()

    def _handle(self, writer: asyncio.StreamWriter, pdu: Pdu) -> None:
        if pdu.command_id in (Cmd.BIND_TRANSCEIVER, Cmd.BIND_TRANSMITTER, Cmd.BIND_RECEIVER):
            self.binds += 1
            self.bound_as.append((Cmd(pdu.command_id), writer))
            resp = Pdu(pdu.command_id | 0x80000000, self.bind_status, pdu.sequence, b"fake\0")
            writer.write(resp.encode())
        elif pdu.command_id == Cmd.SUBMIT_SM:
            self.submits.append(pdu)
            self.submitted_on.append(writer)
            status = self.policy(self, pdu)
            if status is None:
                self.held.append((writer, pdu))
            else:
                self.answer(writer, pdu, status)
        elif pdu.command_id == Cmd.UNBIND:
            writer.write(Pdu(Cmd.UNBIND_RESP, 0, pdu.sequence).encode())
        elif pdu.is_response:
            self.answers.append(pdu)

    def answer(self, writer: asyncio.StreamWriter, pdu: Pdu, status: int = 0) -> None:
        body = f"id{pdu.sequence:05d}\0".encode() if status == 0 else b""
        writer.write(Pdu(Cmd.SUBMIT_SM_RESP, status, pdu.sequence, body).encode())

    def release(self, reverse: bool = True) -> None:
        held, self.held = self.held, []
        for writer, pdu in reversed(held) if reverse else held:
            self.answer(writer, pdu)

    def drop(self) -> None:
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()


class Sink:
    def __init__(self) -> None:
        self.reports: list[DeliveryReport] = []
        self.replies: list[IncomingReply] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def delivery_report(self, report: DeliveryReport) -> None:
        await self.gate.wait()
        self.reports.append(report)

    async def incoming(self, reply: IncomingReply) -> None:
        await self.gate.wait()
        self.replies.append(reply)


async def wait_until(probe: Callable[[], object], timeout: float = 3.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if probe():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


@pytest.fixture
async def smsc() -> AsyncIterator[FakeSmsc]:
    fake = FakeSmsc()
    await fake.start()
    yield fake
    fake.drop()
    assert fake.server is not None
    fake.server.close()
    await fake.server.wait_closed()
    await asyncio.sleep(0.01)  # let the connection handlers see their end


async def carrier_for(smsc: FakeSmsc, window: int = 4, timeout: float = 5.0) -> SmppCarrier:
    assert smsc.server is not None
    port = smsc.server.sockets[0].getsockname()[1]
    session = SessionConfig(
        "127.0.0.1", port, "esme", "pw", window=window, response_timeout=timeout,
        enquire_link_seconds=0, backoff_min=0.05,
    )  # fmt: skip
    carrier = SmppCarrier(SmppConfig(session, source_addr="1069"), name="cm")
    return carrier


@pytest.fixture
async def sink() -> Sink:
    return Sink()


def out(i: int, text: str = "code 1234", units: int = 1, ext: str | None = None) -> Outgoing:
    return Outgoing(i, f"1380013{i:04d}", text, Kind.SMS, units, ext)


async def started(smsc: FakeSmsc, sink: Sink, **kw: float) -> SmppCarrier:
    carrier = await carrier_for(smsc, **kw)  # type: ignore[arg-type]
    await carrier.start(sink)
    await wait_until(lambda: carrier.status()["state"] == "bound")
    return carrier


async def test_answers_out_of_order_are_matched_by_sequence(smsc: FakeSmsc, sink: Sink) -> None:
    smsc.policy = lambda s, p: None
    carrier = await started(smsc, sink, window=8)
    task = asyncio.create_task(carrier.submit([out(i) for i in range(1, 6)]))
    await wait_until(lambda: len(smsc.held) == 5)
    assert carrier.status()["window_in_use"] == 5
    smsc.release(reverse=True)
    results = await task
    seqs = [p.sequence for p in smsc.submits]
    assert [r.carrier_ref for r in results] == [f"id{s:05d}" for s in seqs]
    assert [r.message_id for r in results] == [1, 2, 3, 4, 5]
    assert carrier.status()["window_in_use"] == 0
    await carrier.stop()


async def test_window_bounds_submits_in_flight(smsc: FakeSmsc, sink: Sink) -> None:
    smsc.policy = lambda s, p: None
    carrier = await started(smsc, sink, window=3)
    task = asyncio.create_task(carrier.submit([out(i) for i in range(1, 8)]))
    await wait_until(lambda: len(smsc.held) == 3)
    await asyncio.sleep(0.05)
    assert len(smsc.submits) == 3  # the fourth waits for a free slot
    while not task.done():
        smsc.release()
        await asyncio.sleep(0.01)
    assert all(r.accepted for r in task.result())
    assert len(smsc.submits) == 7
    await carrier.stop()


async def test_source_address_carries_the_extended_code(smsc: FakeSmsc, sink: Sink) -> None:
    carrier = await started(smsc, sink)
    await carrier.submit([out(1, ext="0042")])
    sm = ShortMessage.decode(smsc.submits[0].body)
    assert (sm.source_addr, sm.destination_addr, sm.registered_delivery) == (
        "10690042",
        "13800130001",
        1,
    )
    await carrier.stop()


async def test_long_message_is_taken_with_every_part_ref(smsc: FakeSmsc, sink: Sink) -> None:
    carrier = await started(smsc, sink)
    text = "长" * 140
    [result] = await carrier.submit([out(1, text, units=3)])
    assert len(smsc.submits) == 3
    assert len(result.part_refs) == 3
    assert result.carrier_ref == result.part_refs[0]
    await carrier.stop()


async def test_throttled_parts_are_sent_again_not_failed(smsc: FakeSmsc, sink: Sink) -> None:
    throttled: set[int] = set()

    def policy(s: FakeSmsc, pdu: Pdu) -> int:
        if len(throttled) < 2:
            throttled.add(pdu.sequence)
            return Status.RTHROTTLED
        return Status.OK

    smsc.policy = policy
    carrier = await started(smsc, sink)
    results = await carrier.submit([out(1), out(2)])
    assert all(r.accepted for r in results)
    assert len(smsc.submits) == 4
    assert carrier.status()["throttled"] == 2
    await carrier.stop()


async def test_throttled_for_good_is_queued_again(smsc: FakeSmsc, sink: Sink) -> None:
    smsc.policy = lambda s, p: Status.RMSGQFUL
    carrier = await started(smsc, sink)
    carrier._pacer.pause = lambda seconds: None  # type: ignore[method-assign]  # no waiting here
    [result] = await carrier.submit([out(1)])
    assert result.retry_after is not None
    assert result.error is None
    assert result.unknown is None
    await carrier.stop()


async def test_permanent_error_fails_the_message(smsc: FakeSmsc, sink: Sink) -> None:
    smsc.policy = lambda s, p: Status.RINVDSTADR
    carrier = await started(smsc, sink)
    [result] = await carrier.submit([out(1)])
    assert result.error is not None
    assert "RINVDSTADR" in result.error
    assert carrier.status()["errors"] == 1
    await carrier.stop()


async def test_dropped_link_leaves_written_submits_unknown_and_reconnects(
    smsc: FakeSmsc, sink: Sink
) -> None:
    smsc.policy = lambda s, p: None
    carrier = await started(smsc, sink)
    task = asyncio.create_task(carrier.submit([out(1), out(2)]))
    await wait_until(lambda: len(smsc.held) == 2)
    smsc.held.clear()
    smsc.drop()
    results = await task
    assert all(r.unknown for r in results)
    assert not any(r.accepted or r.retry_after is not None for r in results)
    smsc.policy = lambda s, p: Status.OK
    await wait_until(lambda: smsc.binds == 2 and carrier.status()["state"] == "bound")
    [again] = await carrier.submit([out(3)])
    assert again.accepted
    await carrier.stop()


async def test_no_answer_in_time_is_unknown(smsc: FakeSmsc, sink: Sink) -> None:
    smsc.policy = lambda s, p: None
    carrier = await started(smsc, sink, timeout=0.2)
    [result] = await carrier.submit([out(1)])
    assert result.unknown
    assert "no answer" in result.unknown
    await carrier.stop()


async def test_not_bound_is_not_taken() -> None:
    session = SessionConfig("127.0.0.1", 9, "esme", "pw", backoff_min=10)
    carrier = SmppCarrier(SmppConfig(session), name="cm")
    await carrier.start(Sink())
    [result] = await carrier.submit([out(1)])
    assert result.retry_after is not None
    assert result.fault
    assert carrier.status()["state"] == "connecting"
    await carrier.stop()


async def test_deliver_sm_is_answered_after_the_sink_returned(smsc: FakeSmsc, sink: Sink) -> None:
    carrier = await started(smsc, sink)
    sink.gate.clear()
    receipt = ShortMessage("13800130001", "1069", b"id:id00001 stat:DELIVRD err:000", esm_class=4)
    smsc.writers[0].write(Pdu(Cmd.DELIVER_SM, 0, 77, receipt.encode()).encode())
    await asyncio.sleep(0.1)
    assert smsc.answers == []  # not committed yet: not answered
    sink.gate.set()
    await wait_until(lambda: smsc.answers)
    assert smsc.answers[0].command_id == Cmd.DELIVER_SM_RESP
    assert smsc.answers[0].sequence == 77
    assert smsc.answers[0].status == 0
    assert message_id_of(smsc.answers[0].body) == ""
    assert [r.carrier_ref for r in sink.reports] == ["id00001"]
    assert carrier.status()["last_receipt"] is not None
    await carrier.stop()


async def test_refused_bind_is_shown_and_retried_with_back_off(smsc: FakeSmsc, sink: Sink) -> None:
    smsc.bind_status = Status.RINVPASWD
    carrier = await carrier_for(smsc)
    await carrier.start(sink)
    await wait_until(lambda: carrier.status()["state"] == "bind refused")
    assert "RINVPASWD" in str(carrier.status()["last_error"])
    [result] = await carrier.submit([out(1)])
    assert result.retry_after is not None
    assert result.fault
    smsc.bind_status = 0
    await wait_until(lambda: carrier.status()["state"] == "bound")
    assert smsc.binds >= 2  # refused, then bound on a retry
    await carrier.stop()


async def test_transmitter_and_receiver_binds(smsc: FakeSmsc, sink: Sink) -> None:
    assert smsc.server is not None
    port = smsc.server.sockets[0].getsockname()[1]
    session = SessionConfig("127.0.0.1", port, "esme", "pw", enquire_link_seconds=0)
    config = SmppConfig(session, binds=2, bind_mode="transmitter+receiver")
    carrier = SmppCarrier(config, name="cm")
    await carrier.start(sink)
    await wait_until(lambda: carrier.status()["binds_bound"] == 4)
    kinds = sorted(kind.name for kind, _ in smsc.bound_as)
    assert kinds == ["BIND_RECEIVER"] * 2 + ["BIND_TRANSMITTER"] * 2
    results = await carrier.submit([out(i) for i in range(1, 9)])
    assert all(r.accepted for r in results)
    # submits only over the transmitters, spread over both
    transmitters = {id(w) for kind, w in smsc.bound_as if kind is Cmd.BIND_TRANSMITTER}
    assert {id(w) for w in smsc.submitted_on} == transmitters
    receiver = next(w for kind, w in smsc.bound_as if kind is Cmd.BIND_RECEIVER)
    reply = ShortMessage("13800138000", "1069", b"hello", data_coding=0)
    receiver.write(Pdu(Cmd.DELIVER_SM, 0, 5, reply.encode()).encode())
    await wait_until(lambda: smsc.answers)
    assert (smsc.answers[0].command_id, smsc.answers[0].sequence) == (Cmd.DELIVER_SM_RESP, 5)
    assert [r.content for r in sink.replies] == ["hello"]
    await carrier.stop()


async def test_tps_spaces_the_submits(smsc: FakeSmsc, sink: Sink) -> None:
    assert smsc.server is not None
    port = smsc.server.sockets[0].getsockname()[1]
    session = SessionConfig("127.0.0.1", port, "esme", "pw", enquire_link_seconds=0)
    carrier = SmppCarrier(SmppConfig(session, tps=50), name="cm")
    await carrier.start(sink)
    await wait_until(lambda: carrier.status()["state"] == "bound")
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert all(r.accepted for r in await carrier.submit([out(i) for i in range(1, 11)]))
    assert loop.time() - started >= 9 / 50 * 0.9  # 10 starts at 50/s: 9 intervals
    await carrier.stop()


async def test_unanswered_enquire_link_drops_and_rebinds(smsc: FakeSmsc, sink: Sink) -> None:
    assert smsc.server is not None
    port = smsc.server.sockets[0].getsockname()[1]
    session = SessionConfig(
        "127.0.0.1", port, "esme", "pw", response_timeout=0.2, enquire_link_seconds=0.1,
        backoff_min=0.05,
    )  # fmt: skip
    carrier = SmppCarrier(SmppConfig(session), name="cm")
    await carrier.start(sink)  # the fake SMSC never answers enquire_link
    await wait_until(lambda: smsc.binds >= 2)
    await carrier.stop()


async def test_international_numbers_go_without_plus(smsc: FakeSmsc, sink: Sink) -> None:
    carrier = await started(smsc, sink)
    intl = Outgoing(1, "+447700900123", "Your code is 1234", Kind.INTL, 1)
    [result] = await carrier.submit([intl])
    assert result.accepted
    sm = ShortMessage.decode(smsc.submits[0].body)
    assert (sm.destination_addr, sm.dest_ton, sm.dest_npi, sm.data_coding) == (
        "447700900123",
        0,
        1,
        0,  # GSM-7: it fits one part, as billed
    )
    await carrier.stop()
