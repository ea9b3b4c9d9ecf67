"""A real smsgate server sending through local fakes of Alibaba Cloud and Tencent Cloud SMS.

The fakes (tests/support/fake_aliyun.py, fake_tencent.py: real HTTP servers, proven right by
the providers' SDKs) verify every request's signature as the providers do. The product's route
is ``ali`` then ``tc``; an approved template is mapped to each provider's code. Shown: the
values are read out of the content and the message ends delivered from the provider's
receipt; content no mapped template matches is refused at accept (``54``) and costs nothing;
Alibaba Cloud out of credit fails over to Tencent Cloud, charging once.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa

from tests.e2e.server_support import Account, ServerProcess, unique_name
from tests.support.fake_aliyun import FakeAliyun
from tests.support.fake_http import FakeServer
from tests.support.fake_tencent import FakeTencent
from tests.support.waiting import wait_for

pytestmark = pytest.mark.backends("sqlite")

SIGNATURE = "云测试"
TEMPLATE = "【云测试】您的验证码是{code}，{minutes}分钟内有效。"
ALI_ID, ALI_SECRET = "LTAI5tE2eKeyId", "E2eSecretOfTheAliyunFake0123"
TC_ID, TC_KEY = "AKIDe2eSecretIdOfTheTencentFake", "E2eKeyOfTheTencentFake0123456"
_phones = itertools.count(13600000001)


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeAliyun, FakeServer, FakeTencent, FakeServer]]:
    ali = FakeAliyun(
        keys={ALI_ID: ALI_SECRET},
        signs={SIGNATURE},
        templates={"SMS_900001": ("code", "minutes")},
        errors_by_suffix={"9999": "isv.AMOUNT_NOT_ENOUGH"},
    )
    tc = FakeTencent(keys={TC_ID: TC_KEY}, signs={SIGNATURE}, templates={"880001": 2})
    ali_server, tc_server = FakeServer(ali).start(), FakeServer(tc).start()
    try:
        yield ali, ali_server, tc, tc_server
    finally:
        ali_server.stop()
        tc_server.stop()


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory,
    fakes: tuple[FakeAliyun, FakeServer, FakeTencent, FakeServer],
) -> Iterator[ServerProcess]:
    _, ali_server, _, tc_server = fakes
    data = tmp_path_factory.mktemp("clouds")
    proc = ServerProcess(data, f"sqlite:///{data / 'smsgate.db'}")
    proc.cli("migrate")
    proc.cli(
        "carrier", "add", "ali", "--kind", "aliyun", "--url", ali_server.url,
        "--access-key", ALI_ID, "--secret", ALI_SECRET, "--opt", "poll_interval=0.3",
    )  # fmt: skip
    proc.cli(
        "carrier", "add", "tc", "--kind", "tencent", "--url", tc_server.url,
        "--access-key", TC_ID, "--secret", TC_KEY, "--opt", "app_id=1400006666",
        "--opt", "poll_interval=0.3",
    )  # fmt: skip
    proc.cli("product", "set", "general", "--carriers", "ali,tc")
    try:
        yield proc.start()
    finally:
        proc.close()


@pytest.fixture(scope="module")
def customer(gateway: ServerProcess) -> Account:
    account = gateway.create_account(balance=100)
    gateway.cli("signature", "add", account.username, SIGNATURE)
    added = gateway.cli("template", "add", account.username, "--product", "general", TEMPLATE)
    match = re.search(r"#(\d+)", added.stdout)
    assert match, added.stdout
    template_id = match.group(1)
    gateway.cli("template", "approve", template_id)
    gateway.cli("template", "set-upstream", template_id, "--carrier", "ali", "--code", "SMS_900001")
    gateway.cli("template", "set-upstream", template_id, "--carrier", "tc", "--code", "880001")
    gateway.wait_synced()
    return account


def send(gateway: ServerProcess, account: Account, phone: str, content: str) -> str:
    params = {"u": account.username, "p": account.md5, "m": phone, "c": content}
    return httpx.get(f"{gateway.url}/sms", params=params, timeout=10).text


def message(gateway: ServerProcess, phone: str) -> tuple[str, str, str | None] | None:
    with gateway.engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT state, carrier, error FROM messages WHERE phone = :p"), {"p": phone}
        ).first()
    return None if row is None else (str(row[0]), str(row[1]), row[2])


def final(row: tuple[str, str, str | None] | None) -> bool:
    return row is not None and row[0] not in ("accepted", "submitted")


def balance(gateway: ServerProcess, username: str) -> int:
    return sum(delta for delta, _, _ in gateway.ledger(username))


def test_template_values_go_to_aliyun_and_its_receipt_delivers(
    gateway: ServerProcess,
    customer: Account,
    fakes: tuple[FakeAliyun, FakeServer, FakeTencent, FakeServer],
) -> None:
    ali, _, _, _ = fakes
    phone = str(next(_phones))
    before = balance(gateway, customer.username)
    assert send(gateway, customer, phone, "【云测试】您的验证码是602214，5分钟内有效。") == "0"
    row = wait_for(lambda: message(gateway, phone), final, timeout=15)
    assert row == ("delivered", "ali", None)
    [sent] = [s for s in ali.sent if s.phone == phone]
    assert (sent.sign_name, sent.template_code, sent.params) == (
        SIGNATURE,
        "SMS_900001",
        {"code": "602214", "minutes": "5"},
    )
    assert ali.refused_signatures == 0
    assert balance(gateway, customer.username) == before - 1


def test_content_no_mapped_template_matches_is_refused_with_54(
    gateway: ServerProcess, customer: Account
) -> None:
    phone = str(next(_phones))
    before = balance(gateway, customer.username)
    assert send(gateway, customer, phone, f"【云测试】随便说点 {unique_name('x')}") == "54"
    assert message(gateway, phone) is None
    assert balance(gateway, customer.username) == before


def test_aliyun_out_of_credit_fails_over_to_tencent_charging_once(
    gateway: ServerProcess,
    customer: Account,
    fakes: tuple[FakeAliyun, FakeServer, FakeTencent, FakeServer],
) -> None:
    ali, _, tc, _ = fakes
    phone = "1360000" + "9999"  # the Aliyun fake answers isv.AMOUNT_NOT_ENOUGH for it
    before = balance(gateway, customer.username)
    assert send(gateway, customer, phone, "【云测试】您的验证码是771001，10分钟内有效。") == "0"
    row = wait_for(lambda: message(gateway, phone), final, timeout=15)
    assert row == ("delivered", "tc", None)
    assert [s.phone for s in ali.sent if s.phone == phone] == []
    [sent] = [s for s in tc.sent if s.phone == f"+86{phone}"]
    assert (sent.template_id, sent.params) == ("880001", ["771001", "10"])
    assert tc.refused_signatures == 0
    assert balance(gateway, customer.username) == before - 1
    kinds = [kind for _, kind, _ in gateway.ledger(customer.username)]
    assert "refund" not in kinds


def test_carrier_show_prints_no_secret(gateway: ServerProcess) -> None:
    shown = (
        gateway.cli("carrier", "show", "ali").stdout + gateway.cli("carrier", "show", "tc").stdout
    )
    assert ALI_SECRET not in shown
    assert TC_KEY not in shown
    assert "set" in shown
