"""The `smpp` carrier kind against an SMSC that is not ours: the npm package `smpp`
(tests/e2e/smsc/smsc.js records every PDU it sees and sends).

One smsgate server for the module, its product `general` routed to an `smpp` carrier added
with the CLI. Shown, asserting at the SMSC:

- a 300-character Chinese message arrives as 5 UCS-2 parts whose UDH reassembles the text;
- receipts (text form, TLV form, a receipt before its submit_sm_resp) drive messages to
  `delivered` / `undelivered`, every part's receipt kept;
- a concatenated reply whose parts come out of order and one twice reaches the account's
  push URL once, whole; every deliver_sm is answered OK;
- throttling answers slow the sender down and fail nothing;
- a link dropped mid-window: the unanswered submits end `unknown`, the link comes back,
  later messages are delivered, and nothing reaches the SMSC twice;
- `kill -9` of smsgate mid-window: only `unknown` or settled messages, never a duplicate.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.e2e.server_support import Account, ServerProcess
from tests.e2e.smsc_support import Smsc, install
from tests.receivers import Receiver
from tests.support.waiting import wait_for

pytestmark = pytest.mark.backends("sqlite")

SIGNATURE = "连接测试"
SERVICE = "1069"
EXT = "77"
_phones = itertools.count(13900000001)
FINAL = ("delivered", "undelivered", "failed", "unknown", "expired")


@pytest.fixture(scope="module")
def smsc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Smsc]:
    install()
    peer = Smsc(tmp_path_factory.mktemp("smsc") / "pdus.jsonl")
    try:
        yield peer
    finally:
        peer.close()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, smsc: Smsc) -> Iterator[ServerProcess]:
    data: Path = tmp_path_factory.mktemp("gw")
    env = {"SMSGATE_SERVICE_NUMBER": SERVICE}
    proc = ServerProcess(data, f"sqlite:///{data / 'smsgate.db'}", env)
    proc.cli("migrate")
    proc.cli(
        "carrier", "add", "smsc", "--kind", "smpp", "--host", "127.0.0.1",
        "--port", str(smsc.port), "--system-id", "smsgate", "--password", "secret",
        "--source-addr", SERVICE, "--window", "32",
        "--opt", "response_timeout=3", "--opt", "cooling_seconds=1",
    )  # fmt: skip
    proc.cli("product", "set", "general", "--carriers", "smsc")
    try:
        proc.start()
        smsc.wait_bound()
        yield proc
    finally:
        proc.close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture(scope="module")
def customer(gateway: ServerProcess, receiver: Receiver) -> Account:
    account = gateway.create_account(balance=1000)
    gateway.cli("signature", "add", account.username, SIGNATURE)
    gateway.cli("account", "set", account.username, "--mo-url", receiver.url(), "--ext-code", EXT)
    gateway.wait_synced()
    return account


@pytest.fixture(autouse=True)
def _normal_smsc(smsc: Smsc) -> Iterator[None]:
    yield
    smsc.configure(
        receipt_form="text", receipt_before_resp=False, undeliverable=[], refuse=[],
        throttle=0, answer_then_hold=-1, receipt_id_base="same",
    )  # fmt: skip


def send(server: ServerProcess, account: Account, phones: list[str], text: str) -> None:
    answer = httpx.get(
        f"{server.url}/sms",
        params={"u": account.username, "p": account.md5, "m": ",".join(phones), "c": text},
        timeout=10,
    )
    assert answer.text == "0", answer.text


def states(server: ServerProcess, phones: list[str]) -> dict[str, str]:
    with server.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT phone, state FROM messages WHERE phone IN :p").bindparams(
                sa.bindparam("p", expanding=True)
            ),
            {"p": phones},
        ).all()
    return {str(p): str(s) for p, s in rows}


def settle(server: ServerProcess, phones: list[str], timeout: float = 10) -> dict[str, str]:
    return wait_for(
        lambda: states(server, phones),
        lambda s: len(s) == len(phones) and all(v in FINAL for v in s.values()),
        timeout=timeout,
    )


def parts_of(server: ServerProcess, phone: str) -> list[tuple[str, str | None]]:
    with server.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT p.carrier_ref, p.state FROM message_parts p "
                "JOIN messages m ON m.id = p.message_id WHERE m.phone = :p ORDER BY p.part"
            ),
            {"p": phone},
        ).all()
    return [(str(r), s) for r, s in rows]


def taken_at_smsc(smsc: Smsc, phone: str) -> list[dict[str, object]]:
    """The submit_sm to ``phone`` the SMSC received (answered or held)."""
    return smsc.pdus("submit_sm", dir="in", destination_addr=phone)


def test_chinese_300_characters_arrive_as_five_ucs2_parts(
    gateway: ServerProcess, smsc: Smsc, customer: Account
) -> None:
    phone = str(next(_phones))
    text = f"【{SIGNATURE}】" + ("这是一条很长的中文短信，用来测试分段发送。" * 15)
    text = text[:300]
    send(gateway, customer, [phone], text)
    assert settle(gateway, [phone]) == {phone: "delivered"}
    submits = taken_at_smsc(smsc, phone)
    assert len(submits) == 5
    assert {s["data_coding"] for s in submits} == {8}
    assert all(int(s["esm_class"]) & 0x40 for s in submits)  # type: ignore[call-overload]
    headers = [bytes.fromhex(s["udh"][0]) for s in submits]  # type: ignore[index]
    assert {h[:2] for h in headers} == {b"\x00\x03"}  # IEI 00 (8-bit reference), length 3
    assert len({h[2] for h in headers}) == 1  # one reference for the five
    assert sorted((h[3], h[4]) for h in headers) == [(5, n) for n in range(1, 6)]
    by_seq = sorted(zip((h[4] for h in headers), (s["text"] for s in submits), strict=True))
    assert "".join(str(t) for _, t in by_seq) == text
    assert all(s["source_addr"] == SERVICE + EXT for s in submits)
    # every part's receipt is kept, under the id the SMSC gave it (hex, leading zeros)
    resps = {p["sequence"]: p["message_id"] for p in smsc.pdus("submit_sm_resp")}
    given = [resps[s["sequence"]] for s in submits]
    assert [ref for ref, _ in parts_of(gateway, phone)] == given
    assert all(str(ref).startswith("0000") for ref in given)
    assert {state for _, state in parts_of(gateway, phone)} == {"delivered"}


def _rebind_with(gateway: ServerProcess, smsc: Smsc, *options: str) -> None:
    binds = len(smsc.pdus("bind_transceiver"))
    gateway.cli("carrier", "set", "smsc", *options)
    wait_for(lambda: len(smsc.pdus("bind_transceiver")), lambda n: n > binds, timeout=10)
    smsc.wait_bound()


def test_receipt_ids_in_another_base_match_when_the_carrier_says_so(
    gateway: ServerProcess, smsc: Smsc, customer: Account
) -> None:
    """The SMSC answers submit_sm with a hex id and writes it in decimal in the receipt."""
    smsc.configure(receipt_form="text", receipt_id_base="dec")
    _rebind_with(gateway, smsc, "--opt", "id_bases=hex/dec")
    try:
        phone = str(next(_phones))
        send(gateway, customer, [phone], f"【{SIGNATURE}】验证码 9876")
        assert settle(gateway, [phone]) == {phone: "delivered"}
        with gateway.engine.connect() as conn:
            ref = conn.execute(
                sa.text("SELECT carrier_ref FROM messages WHERE phone = :p"), {"p": phone}
            ).scalar_one()
        # stored as the number both forms denote: answered in hex, receipted in decimal
        answered = {str(p["message_id"]) for p in smsc.pdus("submit_sm_resp")}
        assert f"{int(ref):010X}" in answered
        receipts = [str(p["short_message_hex"]) for p in smsc.pdus("deliver_sm")]
        assert any(f"id:{ref} ".encode().hex() in r for r in receipts)
    finally:
        _rebind_with(gateway, smsc, "--opt", "id_bases=as-is")


@pytest.mark.parametrize(("form", "before"), [("text", False), ("tlv", False), ("both", True)])
def test_receipts_drive_delivered_and_undelivered(
    gateway: ServerProcess, smsc: Smsc, customer: Account, form: str, before: bool
) -> None:
    good, bad = str(next(_phones)), str(next(_phones))
    smsc.configure(receipt_form=form, receipt_before_resp=before, undeliverable=[bad])
    send(gateway, customer, [good, bad], f"【{SIGNATURE}】验证码 4321，{form}")
    assert settle(gateway, [good, bad]) == {good: "delivered", bad: "undelivered"}
    answers = [p for p in smsc.pdus("deliver_sm_resp") if p["dir"] == "in"]
    assert answers
    assert {p["command_status"] for p in answers} == {0}


def test_concatenated_reply_out_of_order_reaches_the_push_url_once(
    gateway: ServerProcess, smsc: Smsc, customer: Account, receiver: Receiver
) -> None:
    before_resps = len(smsc.pdus("deliver_sm_resp", dir="in"))
    before_hits = receiver.count()
    content = "收到，谢谢！明天下午三点在会议室见面，请带上合同和发票。" * 3
    smsc.inject_mo(
        source="13812345678", dest=SERVICE + EXT, text=content, parts=3, order=[3, 1, 3, 2], ref=9
    )
    hits = receiver.wait_for(before_hits + 1, timeout=10)
    assert len(hits) == before_hits + 1
    assert (hits[-1].m, hits[-1].c) == ("13812345678", content)
    resps = wait_for(
        lambda: smsc.pdus("deliver_sm_resp", dir="in")[before_resps:],
        lambda r: len(r) >= 4,
        timeout=5,
    )
    assert [r["command_status"] for r in resps] == [0, 0, 0, 0]
    with httpx.Client(
        base_url=gateway.url, headers={"Authorization": f"Bearer {customer.api_key}"}
    ) as api:
        replies = api.get("/v1/replies").json()
    items = replies["items"] if isinstance(replies, dict) else replies
    assert [r["content"] for r in items].count(content) == 1


def test_carrier_show_has_live_state_and_no_secret(gateway: ServerProcess) -> None:
    shown = json.loads(gateway.cli("carrier", "show", "smsc", "--json").stdout)
    [live] = shown["live"].values()
    assert live["state"] == "bound"
    assert (live["binds"], live["binds_bound"]) == (1, 1)
    assert live["window"] == 32
    assert live["last_receipt"] is not None
    assert shown["options"]["password"] == "set"
    assert "secret" not in json.dumps(shown)


def test_throttling_slows_the_sender_without_failing(
    gateway: ServerProcess, smsc: Smsc, customer: Account
) -> None:
    phones = [str(next(_phones)) for _ in range(3)]
    smsc.configure(throttle=4)
    send(gateway, customer, phones, f"【{SIGNATURE}】限流测试")
    assert settle(gateway, phones, timeout=20) == dict.fromkeys(phones, "delivered")
    throttled = [p for p in smsc.pdus("submit_sm_resp") if p["command_status"] == 0x58]
    assert len(throttled) >= 4
    for phone in phones:
        ok = [
            s for s in taken_at_smsc(smsc, phone)
            if any(
                r["sequence"] == s["sequence"] and r["command_status"] == 0
                for r in smsc.pdus("submit_sm_resp")
            )
        ]  # fmt: skip
        assert len(ok) == 1  # taken once: a throttled submit is not a delivery


def test_dropped_link_leaves_unanswered_unknown_reconnects_without_duplicates(
    gateway: ServerProcess, smsc: Smsc, customer: Account
) -> None:
    first = [str(next(_phones)) for _ in range(5)]
    smsc.configure(answer_then_hold=2)
    send(gateway, customer, first, f"【{SIGNATURE}】断链测试")
    assert (
        wait_for(lambda: len(smsc.pdus("submit_sm", dir="held")), lambda n: n >= 3, timeout=10) >= 3
    )
    assert smsc.kill_links() == 1
    smsc.configure(answer_then_hold=-1)
    smsc.wait_bound()
    later = [str(next(_phones)) for _ in range(3)]
    send(gateway, customer, later, f"【{SIGNATURE}】重连之后")
    after = settle(gateway, first + later)
    held = {p["destination_addr"] for p in smsc.pdus("submit_sm", dir="held")}
    assert {p: s for p, s in after.items() if p in held} == dict.fromkeys(held, "unknown")
    assert all(after[p] == "delivered" for p in first + later if p not in held)
    for phone in first + later:
        assert len(taken_at_smsc(smsc, phone)) == 1, phone


def test_kill_9_mid_window_never_duplicates(
    gateway: ServerProcess, smsc: Smsc, customer: Account
) -> None:
    phones = [str(next(_phones)) for _ in range(4)]
    smsc.configure(answer_then_hold=0)
    send(gateway, customer, phones, f"【{SIGNATURE}】进程被杀")
    assert wait_for(
        lambda: [p for p in phones if taken_at_smsc(smsc, p)], lambda t: len(t) == 4, timeout=10
    )
    gateway.kill()
    smsc.configure(answer_then_hold=-1)
    gateway.start()
    smsc.wait_bound()
    after = settle(gateway, phones)
    assert set(after.values()) <= {"unknown", "delivered", "undelivered"}
    assert "unknown" in after.values()
    for phone in phones:
        assert len(taken_at_smsc(smsc, phone)) == 1, phone
