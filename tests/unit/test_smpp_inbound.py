"""deliver_sm to the sink: receipts, replies reassembled (any order, repeats, timeouts),
and the answer given only once the sink returned."""

from __future__ import annotations

import asyncio

import pytest

from smsgate.carriers.smpp.inbound import Inbound, mo_text
from smsgate.carriers.smpp.pdu import ShortMessage, Status, Tag
from smsgate.core.messages import DeliveryReport
from smsgate.core.replies import IncomingReply
from smsgate.core.segments import concat_udh
from smsgate.core.states import MessageState


class Sink:
    def __init__(self, fail: bool = False) -> None:
        self.reports: list[DeliveryReport] = []
        self.replies: list[IncomingReply] = []
        self.fail = fail
        self.gate = asyncio.Event()
        self.gate.set()

    async def delivery_report(self, report: DeliveryReport) -> None:
        await self.gate.wait()
        if self.fail:
            raise RuntimeError("database down")
        self.reports.append(report)

    async def incoming(self, reply: IncomingReply) -> None:
        await self.gate.wait()
        if self.fail:
            raise RuntimeError("database down")
        self.replies.append(reply)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def part(text: str, seq: int, total: int, ref: int = 7, src: str = "13800138000") -> ShortMessage:
    body = concat_udh(ref, total, seq) + text.encode("utf-16-be")
    return ShortMessage(src, "10690012", body, esm_class=0x40, data_coding=8)


def make(sink: Sink, timeout: float = 60.0) -> tuple[Inbound, Clock]:
    clock = Clock()
    inbound = Inbound("cm", timeout, monotonic=clock)
    inbound.attach(sink)
    return inbound, clock


async def test_text_receipt_becomes_a_report_with_the_exact_id() -> None:
    sink = Sink()
    inbound, _ = make(sink)
    sm = ShortMessage(esm_class=4, short_message=b"id:000123 stat:UNDELIV err:045")
    assert await inbound.on_deliver(sm) == Status.OK
    [report] = sink.reports
    assert (report.carrier, report.carrier_ref, report.state) == (
        "cm",
        "000123",
        MessageState.UNDELIVERED,
    )
    assert report.error == "stat:UNDELIV err:045"
    assert inbound.last_receipt is not None


async def test_intermediate_receipt_is_answered_and_not_reported() -> None:
    sink = Sink()
    inbound, _ = make(sink)
    assert (
        await inbound.on_deliver(ShortMessage(esm_class=4, short_message=b"id:1 stat:ENROUTE")) == 0
    )
    assert sink.reports == []


async def test_answer_waits_for_the_sink() -> None:
    sink = Sink()
    sink.gate.clear()
    inbound, _ = make(sink)
    task = asyncio.create_task(inbound.on_deliver(ShortMessage("13800138000", "106", b"hi")))
    await asyncio.sleep(0.01)
    assert not task.done()  # not answered while the reply is not committed
    sink.gate.set()
    assert await task == Status.OK
    assert [r.content for r in sink.replies] == ["hi"]


async def test_sink_failure_asks_for_a_resend() -> None:
    sink = Sink(fail=True)
    inbound, _ = make(sink)
    assert await inbound.on_deliver(ShortMessage("1", "2", b"hi")) == Status.RX_T_APPN


async def test_concatenated_reply_out_of_order_with_a_repeat() -> None:
    sink = Sink()
    inbound, _ = make(sink)
    pieces = ["第一段", "第二段", "第三段"]
    order = [3, 1, 3, 2]  # the third part twice
    tasks = []
    for seq in order:
        tasks.append(asyncio.create_task(inbound.on_deliver(part(pieces[seq - 1], seq, 3))))
        await asyncio.sleep(0.01)
        if seq != 2:
            assert not tasks[-1].done()  # parts wait for the whole reply to be committed
    assert await asyncio.gather(*tasks) == [Status.OK] * 4
    [reply] = sink.replies
    assert reply.content == "第一段第二段第三段"
    assert (reply.phone, reply.dest, reply.carrier) == ("13800138000", "10690012", "cm")


async def test_two_senders_with_the_same_reference_do_not_mix() -> None:
    sink = Sink()
    inbound, _ = make(sink)
    await asyncio.gather(
        inbound.on_deliver(part("A1", 1, 2, src="1")),
        inbound.on_deliver(part("B1", 1, 2, src="2")),
        inbound.on_deliver(part("B2", 2, 2, src="2")),
        inbound.on_deliver(part("A2", 2, 2, src="1")),
    )
    assert sorted(r.content for r in sink.replies) == ["A1A2", "B1B2"]


async def test_missing_part_times_out_and_what_arrived_is_kept() -> None:
    sink = Sink()
    inbound, clock = make(sink, timeout=30)
    first = asyncio.create_task(inbound.on_deliver(part("前半", 1, 3)))
    third = asyncio.create_task(inbound.on_deliver(part("后半", 3, 3)))
    await asyncio.sleep(0.01)
    clock.now += 29
    await inbound.sweep()
    assert not first.done()
    clock.now += 2
    await inbound.sweep()
    assert await first == await third == Status.OK
    assert [r.content for r in sink.replies] == ["前半后半"]


async def test_sar_tlvs_and_gsm7() -> None:
    sink = Sink()
    inbound, _ = make(sink)

    def sar(text: str, seq: int) -> ShortMessage:
        tlvs = (
            (Tag.SAR_MSG_REF_NUM, (300).to_bytes(2, "big")),
            (Tag.SAR_TOTAL_SEGMENTS, b"\x02"),
            (Tag.SAR_SEGMENT_SEQNUM, bytes((seq,))),
        )
        return ShortMessage("447700900123", "106", text.encode("ascii"), data_coding=0, tlvs=tlvs)

    await asyncio.gather(inbound.on_deliver(sar("world", 2)), inbound.on_deliver(sar("hello ", 1)))
    assert [r.content for r in sink.replies] == ["hello world"]


def test_message_payload_is_read_when_short_message_is_empty() -> None:
    sm = ShortMessage(data_coding=8, tlvs=((Tag.MESSAGE_PAYLOAD, "长消息".encode("utf-16-be")),))
    assert mo_text(sm) == (None, "长消息")


@pytest.mark.parametrize("coding", [0, 8])
def test_single_part_reply_decodes(coding: int) -> None:
    body = "Hi@".encode("utf-16-be") if coding == 8 else bytes((0x48, 0x69, 0x00))
    assert mo_text(ShortMessage(short_message=body, data_coding=coding))[1] == "Hi@"


async def test_a_surrogate_pair_split_by_the_sender_is_joined_again() -> None:
    sink = Sink()
    inbound, _ = make(sink)
    raw = "好😀吧".encode("utf-16-be")  # the emoji's halves land in different parts
    first = ShortMessage("1", "2", concat_udh(5, 2, 1) + raw[:4], esm_class=0x40, data_coding=8)
    second = ShortMessage("1", "2", concat_udh(5, 2, 2) + raw[4:], esm_class=0x40, data_coding=8)
    await asyncio.gather(inbound.on_deliver(second), inbound.on_deliver(first))
    assert [r.content for r in sink.replies] == ["好😀吧"]


async def test_a_lone_surrogate_is_replaced_when_its_partner_never_comes() -> None:
    sink = Sink()
    inbound, clock = make(sink, timeout=5)
    raw = "😀".encode("utf-16-be")
    task = asyncio.create_task(
        inbound.on_deliver(
            ShortMessage("1", "2", concat_udh(6, 2, 1) + raw[:2], esm_class=0x40, data_coding=8)
        )
    )
    await asyncio.sleep(0.01)
    clock.now += 6
    await inbound.sweep()
    assert await task == Status.OK
    assert [r.content for r in sink.replies] == ["\ufffd"]
