"""The upstream carriers against real HTTP servers: fakes of SMSBao, Alibaba Cloud, Tencent Cloud.

Each answer the provider can give is mapped to the message's fate (taken, not taken and the
carrier cooled, refused and refunded, ``unknown``, the carrier stopped), and what the carrier
sends is what the provider's documentation asks for (the Aliyun and Tencent fakes verify the
signature of every request, as the providers do).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar
from urllib.parse import parse_qs

import pytest

from smsgate.carriers import aliyun, smsbao, tencent
from smsgate.carriers.upstream import Gate, HttpLimits
from smsgate.core.messages import DeliveryReport, Kind, Outgoing, SubmitResult
from smsgate.core.replies import IncomingReply
from smsgate.core.states import MessageState
from smsgate.core.templates import compile_template
from smsgate.core.upstream_templates import UpstreamTemplate
from tests.support.fake_aliyun import FakeAliyun
from tests.support.fake_http import Answer, FakeServer, Request, serving
from tests.support.fake_tencent import FakeTencent

T = TypeVar("T")
CONTENT = "【短信宝】您的验证码是4821，5分钟内有效。"
TEMPLATE = "【短信宝】您的验证码是{code}，5分钟内有效。"


class Sink:
    def __init__(self) -> None:
        self.reports: list[DeliveryReport] = []
        self.replies: list[IncomingReply] = []

    async def delivery_report(self, report: DeliveryReport) -> None:
        self.reports.append(report)

    async def incoming(self, reply: IncomingReply) -> None:
        self.replies.append(reply)


async def until(probe: Callable[[], T], timeout: float = 5.0) -> T:
    """Await (yielding to the event loop) until ``probe()`` is truthy; its last value."""
    deadline = time.monotonic() + timeout
    while not (result := probe()) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return result


def sms(message_id: int, phone: str = "13800138000", content: str = CONTENT) -> Outgoing:
    return Outgoing(id=message_id, phone=phone, content=content, kind=Kind.SMS, units=1)


def fate(result: SubmitResult) -> str:
    if result.carrier_ref is not None:
        return "taken"
    if result.error is not None:
        return "refused"
    if result.unknown is not None:
        return "unknown"
    if result.retry_after is not None:
        return "not-taken-fault" if result.fault else "later"
    return "?"


# -- smsbao ----------------------------------------------------------------------------------


class SmsbaoScript:
    """A scripted SMSBao: answers ``codes[phone]`` (``0`` by default), or stalls/fails."""

    def __init__(self) -> None:
        self.codes: dict[str, str] = {}
        self.status = 200
        self.stall = 0.0
        self.balance = "0\n12,345"
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    def __call__(self, request: Request) -> Answer:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.stall:
                time.sleep(self.stall)
            params = {k: v[0] for k, v in parse_qs(request.query).items()}
            body = (
                self.balance
                if request.path == "/query"
                else self.codes.get(params.get("m", ""), "0")
            )
            return self.status, "text/plain; charset=utf-8", body.encode()
        finally:
            with self._lock:
                self.in_flight -= 1


@pytest.fixture
def smsbao_fake() -> Iterator[tuple[SmsbaoScript, FakeServer]]:
    script = SmsbaoScript()
    with serving(script) as server:
        yield script, server


def smsbao_carrier(url: str, **options: object) -> smsbao.SmsbaoCarrier:
    return smsbao.build("up", {"url": url, "username": "alice", "password": "s3cret", **options})


@pytest.mark.parametrize(
    ("code", "expected", "stops"),
    [
        ("0", "taken", False),
        ("41", "not-taken-fault", False),
        ("30", "not-taken-fault", True),
        ("40", "not-taken-fault", True),
        ("42", "not-taken-fault", True),
        ("43", "not-taken-fault", True),
        ("-1", "not-taken-fault", True),
        ("55", "not-taken-fault", True),
        ("50", "refused", False),
        ("51", "refused", False),
        ("52", "refused", False),
        ("54", "refused", False),
        ("56", "refused", False),
        ("57", "refused", False),
        ("44", "later", False),
        ("53", "later", False),
        ("<html>oops</html>", "unknown", False),
    ],
)
def test_smsbao_answer_codes_decide_the_message_fate(code: str, expected: str, stops: bool) -> None:
    carrier = smsbao_carrier("http://127.0.0.1:9")
    assert fate(carrier.fate(1, 200, code)) == expected
    assert (carrier.status()["state"] == "stopped") is stops


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (500, "not-taken-fault"),
        (502, "not-taken-fault"),
        (503, "not-taken-fault"),
        (504, "unknown"),
        (404, "unknown"),
    ],
)
def test_smsbao_http_errors_decide_the_message_fate(status: int, expected: str) -> None:
    assert fate(smsbao_carrier("http://127.0.0.1:9").fate(1, status, "")) == expected


async def test_smsbao_sends_the_documented_request_and_reports_delivery(
    smsbao_fake: tuple[SmsbaoScript, FakeServer],
) -> None:
    _, server = smsbao_fake
    carrier = smsbao_carrier(server.url, product="77", balance_interval=0)
    sink = Sink()
    await carrier.start(sink)
    try:
        [result] = await carrier.submit([sms(41)])
        assert result.carrier_ref == "up:41"
        request = server.requests[-1]
        assert request.path == "/sms"
        params = {k: v[0] for k, v in parse_qs(request.query).items()}
        assert params == {
            "u": "alice",
            "p": hashlib.md5(b"s3cret").hexdigest(),
            "g": "77",
            "m": "13800138000",
            "c": CONTENT,
        }
        reports = await until(lambda: sink.reports)
        assert [(r.carrier, r.carrier_ref, r.state) for r in reports] == [
            ("up", "up:41", MessageState.DELIVERED)
        ]
    finally:
        await carrier.stop()


async def test_smsbao_paths_per_kind_and_api_key_sent_as_is(
    smsbao_fake: tuple[SmsbaoScript, FakeServer],
) -> None:
    _, server = smsbao_fake
    key = "a" * 32
    carrier = smsbao_carrier(server.url, api_key=key, balance_interval=0, assume_delivered=False)
    sink = Sink()
    await carrier.start(sink)
    try:
        intl = Outgoing(id=1, phone="+85261234567", content=CONTENT, kind=Kind.INTL, units=1)
        voice = Outgoing(id=2, phone="13800138000", content="4821", kind=Kind.VOICE, units=1)
        await carrier.submit([intl])
        await carrier.submit([voice])
        paths = [
            (r.path, parse_qs(r.query)["p"][0], parse_qs(r.query)["m"][0]) for r in server.requests
        ]
        assert paths == [("/wsms", key, "+85261234567"), ("/voice", key, "13800138000")]
        assert sink.reports == []  # assume_delivered off: they stay submitted
    finally:
        await carrier.stop()


async def test_smsbao_balance_is_in_the_status(
    smsbao_fake: tuple[SmsbaoScript, FakeServer],
) -> None:
    _, server = smsbao_fake
    carrier = smsbao_carrier(server.url, balance_interval=0)
    await carrier.start(Sink())
    try:
        assert await carrier.query_balance() == 345
        status = carrier.status()
        assert status["balance"] == 345
        assert "s3cret" not in repr(status)
        assert hashlib.md5(b"s3cret").hexdigest() not in repr(status)
    finally:
        await carrier.stop()


async def test_smsbao_configuration_error_stops_the_carrier(
    smsbao_fake: tuple[SmsbaoScript, FakeServer], caplog: pytest.LogCaptureFixture
) -> None:
    script, server = smsbao_fake
    script.codes["13800138000"] = "30"
    carrier = smsbao_carrier(server.url, balance_interval=0)
    await carrier.start(Sink())
    try:
        [result] = await carrier.submit([sms(1)])
        assert fate(result) == "not-taken-fault"
        assert carrier.status()["state"] == "stopped"
        assert "30 wrong password" in str(carrier.status()["stopped_because"])
        assert any(r.levelname == "ERROR" and "stopped" in r.message for r in caplog.records)
        [later] = await carrier.submit([sms(2, phone="13900139000")])
        assert fate(later) == "not-taken-fault"
        assert len([r for r in server.requests if r.path == "/sms"]) == 1
    finally:
        await carrier.stop()


async def test_smsbao_stopped_carrier_resumes_once_query_accepts_it_again(
    smsbao_fake: tuple[SmsbaoScript, FakeServer],
) -> None:
    script, server = smsbao_fake
    script.codes["13800138000"] = "43"
    script.balance = "43"
    carrier = smsbao_carrier(server.url, balance_interval=0)
    await carrier.start(Sink())
    try:
        await carrier.submit([sms(1)])
        assert await carrier.query_balance() is None
        assert carrier.status()["state"] == "stopped"
        script.balance = "0\n5,95"  # the upstream's allowlist was fixed
        assert await carrier.query_balance() == 95
        assert carrier.status()["state"] == "running"
        [result] = await carrier.submit([sms(2, phone="13900139000")])
        assert fate(result) == "taken"
    finally:
        await carrier.stop()


async def test_smsbao_credentials_stay_out_of_the_logs(
    smsbao_fake: tuple[SmsbaoScript, FakeServer], caplog: pytest.LogCaptureFixture
) -> None:
    _, server = smsbao_fake
    caplog.set_level(logging.DEBUG)
    carrier = smsbao_carrier(server.url, balance_interval=0)
    await carrier.start(Sink())
    try:
        await carrier.submit([sms(1)])
        await carrier.query_balance()
    finally:
        await carrier.stop()
    assert hashlib.md5(b"s3cret").hexdigest() not in caplog.text


async def test_smsbao_connection_refused_is_not_taken() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    carrier = smsbao_carrier(f"http://127.0.0.1:{port}", balance_interval=0)
    await carrier.start(Sink())
    try:
        [result] = await carrier.submit([sms(1)])
        assert fate(result) == "not-taken-fault"
    finally:
        await carrier.stop()


async def test_smsbao_answer_lost_after_sending_is_unknown(
    smsbao_fake: tuple[SmsbaoScript, FakeServer],
) -> None:
    script, server = smsbao_fake
    script.stall = 1.0
    carrier = smsbao_carrier(server.url, balance_interval=0, timeout=0.2)
    await carrier.start(Sink())
    try:
        [result] = await carrier.submit([sms(1)])
        assert fate(result) == "unknown"
        assert len(server.requests) == 1  # sent once, never again
    finally:
        await carrier.stop()


async def test_smsbao_concurrency_limit_holds(smsbao_fake: tuple[SmsbaoScript, FakeServer]) -> None:
    script, server = smsbao_fake
    script.stall = 0.05
    carrier = smsbao_carrier(server.url, balance_interval=0, concurrency=2)
    await carrier.start(Sink())
    try:
        results = await carrier.submit([sms(i, phone=f"1380013{i:04d}") for i in range(8)])
        assert [fate(r) for r in results] == ["taken"] * 8
        assert script.max_in_flight == 2
    finally:
        await carrier.stop()


async def test_gate_paces_requests_to_the_rate() -> None:
    clock = [100.0]
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    gate = Gate(HttpLimits(rate=4.0), monotonic=lambda: clock[0], sleep=sleep)

    async def one() -> None:
        async with gate:
            pass

    await asyncio.gather(*(one() for _ in range(4)))
    assert sleeps == [0.25, 0.5, 0.75]  # four starts at once: now, then 1/4 s apart


# -- aliyun ----------------------------------------------------------------------------------

ALI_ID, ALI_SECRET = "LTAI5tExampleKeyId", "ExampleSecretForTheFake0123456"


def mapped(carrier: str, code: str) -> dict[str, list[UpstreamTemplate]]:
    return {carrier: [UpstreamTemplate(1, carrier, code, compile_template(TEMPLATE))]}


@pytest.fixture
def aliyun_fake() -> Iterator[tuple[FakeAliyun, FakeServer]]:
    fake = FakeAliyun(keys={ALI_ID: ALI_SECRET}, templates={"SMS_153055065": ("code",)})
    with serving(fake) as server:
        yield fake, server


def aliyun_carrier(url: str, secret: str = ALI_SECRET) -> aliyun.AliyunCarrier:
    carrier = aliyun.build(
        "ali", {"url": url, "access_key": ALI_ID, "secret": secret, "poll_interval": 3600}
    )
    carrier.use_templates(mapped("ali", "SMS_153055065"))
    return carrier


async def test_aliyun_sends_the_template_and_polls_receipts(
    aliyun_fake: tuple[FakeAliyun, FakeServer],
) -> None:
    fake, server = aliyun_fake
    fake.undelivered.add("13900139000")
    carrier = aliyun_carrier(server.url)
    sink = Sink()
    await carrier.start(sink)
    try:
        first, second = await carrier.submit([sms(7), sms(8, phone="13900139000")])
        assert fake.refused_signatures == 0
        sent = sorted(
            (s.out_id, s.phone, s.sign_name, s.template_code, s.params) for s in fake.sent
        )
        assert sent == [
            ("7", "13800138000", "短信宝", "SMS_153055065", {"code": "4821"}),
            ("8", "13900139000", "短信宝", "SMS_153055065", {"code": "4821"}),
        ]
        assert first.carrier_ref is not None
        assert first.carrier_ref.endswith(":7")
        await carrier.poll_receipts()
        states = {r.carrier_ref: (r.state, r.error) for r in sink.reports}
        assert states == {
            first.carrier_ref: (MessageState.DELIVERED, None),
            second.carrier_ref: (MessageState.UNDELIVERED, "aliyun: IS_CLOSE"),
        }
        assert carrier.status()["awaiting_receipt"] == 0
    finally:
        await carrier.stop()


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("isv.AMOUNT_NOT_ENOUGH", "not-taken-fault"),
        ("isv.OUT_OF_SERVICE", "not-taken-fault"),
        ("isp.SYSTEM_ERROR", "not-taken-fault"),
        ("isv.BUSINESS_LIMIT_CONTROL", "later"),
        ("Throttling.User", "later"),
        ("isv.MOBILE_NUMBER_ILLEGAL", "refused"),
        ("isv.BLACK_KEY_CONTROL_LIMIT", "refused"),
        ("isv.SMS_SIGNATURE_ILLEGAL", "refused"),
    ],
)
async def test_aliyun_answer_codes_decide_the_message_fate(
    aliyun_fake: tuple[FakeAliyun, FakeServer], code: str, expected: str
) -> None:
    fake, server = aliyun_fake
    fake.errors_by_suffix["0000"] = code
    carrier = aliyun_carrier(server.url)
    await carrier.start(Sink())
    try:
        [result] = await carrier.submit([sms(1, phone="13800130000")])
        assert fate(result) == expected
        assert carrier.status()["state"] == "running"
    finally:
        await carrier.stop()


async def test_aliyun_wrong_secret_stops_the_carrier(
    aliyun_fake: tuple[FakeAliyun, FakeServer],
) -> None:
    fake, server = aliyun_fake
    carrier = aliyun_carrier(server.url, secret="wrong")
    await carrier.start(Sink())
    try:
        [result] = await carrier.submit([sms(1)])
        assert fate(result) == "not-taken-fault"
        assert fake.refused_signatures == 1
        assert "SignatureDoesNotMatch" in str(carrier.status()["stopped_because"])
        assert "wrong" not in repr(carrier.status())
    finally:
        await carrier.stop()


async def test_aliyun_refuses_content_without_a_mapped_template(
    aliyun_fake: tuple[FakeAliyun, FakeServer],
) -> None:
    fake, server = aliyun_fake
    carrier = aliyun_carrier(server.url)
    await carrier.start(Sink())
    try:
        [result] = await carrier.submit([sms(1, content="【短信宝】随便说点什么")])
        assert fate(result) == "refused"
        assert fake.sent == []
    finally:
        await carrier.stop()


# -- tencent ---------------------------------------------------------------------------------

TC_ID, TC_KEY = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"


@pytest.fixture
def tencent_fake() -> Iterator[tuple[FakeTencent, FakeServer]]:
    fake = FakeTencent(keys={TC_ID: TC_KEY}, templates={"449739": 1})
    with serving(fake) as server:
        yield fake, server


def tencent_carrier(url: str, key: str = TC_KEY) -> tencent.TencentCarrier:
    carrier = tencent.build(
        "tc",
        {
            "url": url,
            "access_key": TC_ID,
            "secret": key,
            "app_id": "1400006666",
            "poll_interval": 3600,
        },
    )
    carrier.use_templates(mapped("tc", "449739"))
    return carrier


async def test_tencent_sends_the_template_pulls_receipts_and_replies(
    tencent_fake: tuple[FakeTencent, FakeServer],
) -> None:
    fake, server = tencent_fake
    fake.undelivered.add("+8613900139000")
    carrier = tencent_carrier(server.url)
    sink = Sink()
    await carrier.start(sink)
    try:
        first, second = await carrier.submit([sms(7), sms(8, phone="13900139000")])
        assert fake.refused_signatures == 0
        assert sorted((s.phone, s.template_id, tuple(s.params), s.session) for s in fake.sent) == [
            ("+8613800138000", "449739", ("4821",), "7"),
            ("+8613900139000", "449739", ("4821",), "8"),
        ]
        await carrier.pull_receipts()
        states = {r.carrier_ref: r.state for r in sink.reports}
        assert states == {
            first.carrier_ref: MessageState.DELIVERED,
            second.carrier_ref: MessageState.UNDELIVERED,
        }
        fake.reply("13800138000", "TD", extend_code="12")
        await carrier.pull_replies()
        assert [(r.carrier, r.phone, r.dest, r.content) for r in sink.replies] == [
            ("tc", "13800138000", "12", "TD")
        ]
    finally:
        await carrier.stop()


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("FailedOperation.InsufficientBalanceInSmsPackage", "not-taken-fault"),
        ("LimitExceeded.PhoneNumberDailyLimit", "later"),
        ("InvalidParameterValue.IncorrectPhoneNumber", "refused"),
        ("FailedOperation.ContainSensitiveWord", "refused"),
    ],
)
async def test_tencent_answer_codes_decide_the_message_fate(
    tencent_fake: tuple[FakeTencent, FakeServer], code: str, expected: str
) -> None:
    fake, server = tencent_fake
    fake.codes_by_suffix["0000"] = code
    carrier = tencent_carrier(server.url)
    await carrier.start(Sink())
    try:
        [result] = await carrier.submit([sms(1, phone="13800130000")])
        assert fate(result) == expected
    finally:
        await carrier.stop()


async def test_tencent_wrong_key_stops_the_carrier(
    tencent_fake: tuple[FakeTencent, FakeServer],
) -> None:
    fake, server = tencent_fake
    carrier = tencent_carrier(server.url, key="wrong")
    await carrier.start(Sink())
    try:
        [result] = await carrier.submit([sms(1)])
        assert fate(result) == "not-taken-fault"
        assert fake.refused_signatures == 1
        assert "AuthFailure.SignatureFailure" in str(carrier.status()["stopped_because"])
        [later] = await carrier.submit([sms(2)])
        assert fate(later) == "not-taken-fault"
        assert len(fake.sent) == 0
    finally:
        await carrier.stop()
