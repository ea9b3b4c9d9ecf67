"""The console end to end in headless Chromium (Selenium), against one real server:
an operator creates an account, tops it up and gives it a signature; the customer applies
for a template and the operator approves it; a test SMS appears in the live inbox and
turns delivered; a reply from the simulator is pushed to a real receiver; a revoked ApiKey
is refused by /sms. Both languages are walked."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import httpx
import pytest

from tests.e2e.console_support import Page, browser_or_skip, browser_page
from tests.e2e.send_support import SEND_ENV
from tests.e2e.server_support import ServerProcess, unique_name
from tests.receivers import Receiver
from tests.support.waiting import wait_for

pytestmark = pytest.mark.backends("sqlite")
OPERATOR_PASSWORD = "operator-pw-1"
SIGN = "【短信宝】"


@pytest.fixture(scope="module")
def shared_server_env() -> dict[str, str]:
    return dict(SEND_ENV)


class Customer(NamedTuple):
    username: str
    password: str
    api_key: str


@pytest.fixture(scope="module")
def operator_name(shared_server: ServerProcess) -> str:
    browser_or_skip()
    name = unique_name("op")
    shared_server.cli_many(
        ("operator", "create", name, "--password", OPERATOR_PASSWORD),
        ("product", "add", "otp", "Verification codes", "--template-required"),
    )
    shared_server.wait_synced()
    return name


@pytest.fixture(scope="module")
def ops(shared_server: ServerProcess, operator_name: str) -> Iterator[Page]:
    for page in browser_page(shared_server.url, "zh-CN"):
        page.sign_in("operator", operator_name, OPERATOR_PASSWORD)
        yield page


@pytest.fixture(scope="module")
def customer(shared_server: ServerProcess, ops: Page) -> Customer:
    """Made by the operator in the browser: create, top up, register a signature."""
    username, password = unique_name("cust"), "customer-pw-1"
    ops.open("/ops")
    if not ops.css("details.card").get_attribute("open"):
        ops.css("details.card summary").click()
    ops.fill("form[action='/ops/accounts'] input[name=username]", username)
    ops.fill("form[action='/ops/accounts'] input[name=password]", password)
    ops.submit("form[action='/ops/accounts']")
    api_key = ops.css("#new-key").text
    assert len(api_key) == 32
    ops.open(f"/ops/accounts/{username}")
    ops.fill("#amount", "100")
    ops.fill("#ref", "invoice-7")
    ops.submit("form[action$='/topup']")
    ops.wait_text("+100", ".flash")
    assert ops.css("#balance").text == "100"
    ops.fill("#sig", "短信宝")
    ops.submit("form[action$='/signatures']")
    ops.wait_text("【短信宝】", ".flash")
    shared_server.wait_synced()
    return Customer(username, password, api_key)


@pytest.fixture(scope="module")
def me(shared_server: ServerProcess, customer: Customer) -> Iterator[Page]:
    for page in browser_page(shared_server.url, "zh-CN"):
        page.sign_in("customer", customer.username, customer.password)
        yield page


def sms(server: ServerProcess, user: str, key: str, phone: str, text: str, g: str = "") -> str:
    params = {"u": user, "p": key, "m": phone, "c": text}
    if g:
        params["g"] = g
    return httpx.get(f"{server.url}/sms", params=params, trust_env=False).text


def test_the_operators_top_up_is_in_the_ledger_and_the_audit_log(
    ops: Page, me: Page, customer: Customer, operator_name: str
) -> None:
    me.open("/console/ledger")
    assert me.css("#balance").text == "100"
    assert "invoice-7" in me.css("#ledger").text
    me.open("/console")
    assert me.css("#balance").text == "100"
    assert me.css("svg.chart")  # the 30-day chart is drawn
    ops.open("/ops/audit")
    log = ops.css("#audit").text
    # One row, written by the change itself, under the operator's name.
    assert f"operator:{operator_name} ledger.topup {customer.username} +100" in log
    assert log.count(f"ledger.topup {customer.username}") == 1


def test_a_template_applied_for_and_approved_opens_its_product(
    shared_server: ServerProcess, ops: Page, me: Page, customer: Customer
) -> None:
    text = SIGN + "您的验证码是{code}"
    assert (
        sms(
            shared_server,
            customer.username,
            customer.api_key,
            "13900000001",
            SIGN + "您的验证码是1234",
            "otp",
        )
        == "54"
    )
    me.open("/console/templates")
    me.css("#product option[value=otp]").click()
    me.fill("#text", text)
    me.submit("form[action='/console/templates']")
    me.wait_text("#", ".flash")
    assert "待处理" in me.css("#templates").text  # pending

    ops.open("/ops/templates")
    row = next(r for r in ops.all("#review tbody tr") if customer.username in r.text)
    ops.click(row.find_element("css selector", "button[value=approve]"))
    ops.wait_text("已通过", ".flash")

    me.open("/console/templates")
    assert "已通过" in me.css("#templates").text  # approved
    shared_server.wait_synced()
    assert (
        sms(
            shared_server,
            customer.username,
            customer.api_key,
            "13900000001",
            SIGN + "您的验证码是1234",
            "otp",
        )
        == "0"
    )


def test_a_test_sms_shows_in_the_live_inbox_and_turns_delivered(
    shared_server: ServerProcess, me: Page, customer: Customer
) -> None:
    me.open("/console/inbox")
    me.wait_text("实时", "#live")
    # Sent by the application while the inbox is open: the row arrives without a reload.
    assert (
        sms(shared_server, customer.username, customer.api_key, "13900000002", SIGN + "live one")
        == "0"
    )
    wait_for(lambda: me.inbox("13900000002"), timeout=10, interval=0.2)
    wait_for(
        lambda: me.inbox("13900000002"),
        lambda rows: [state for _id, state in rows] == ["delivered"],
        timeout=10,
        interval=0.2,
    )

    # The console's own test SMS, through the same accept service as /sms.
    me.open("/console/send")
    me.fill("#phones", "13900000003")
    me.fill("#content", SIGN + "from the console")
    me.submit("form[action='/console/send']")
    me.wait_text("批次", ".flash")
    me.open("/console/inbox")
    wait_for(
        lambda: me.inbox("13900000003"),
        lambda rows: [state for _id, state in rows] == ["delivered"],
        timeout=10,
        interval=0.2,
    )
    me.open("/console/messages?phone=13900000003")
    me.click(me.css("#messages tbody a"))
    timeline = me.css("ol.timeline").text
    assert "已接收" in timeline
    assert "已送达" in timeline


def test_a_simulated_reply_is_pushed_and_its_attempt_shown(
    shared_server: ServerProcess, me: Page, customer: Customer
) -> None:
    with Receiver() as receiver:
        me.open("/console/settings")
        me.fill("#url", receiver.url())
        me.submit("form[action='/console/settings/mo-url']")
        me.wait_text("已保存", ".flash")
        me.submit("form[action='/console/settings/test-push']")
        flash = me.wait_text("ms", ".flash")
        assert "200" in flash
        assert receiver.wait_for(1, timeout=5)
        shared_server.wait_synced()

        assert (
            sms(
                shared_server,
                customer.username,
                customer.api_key,
                "13900000004",
                SIGN + "reply to me",
            )
            == "0"
        )
        me.open("/console/inbox")
        row_id, _state = wait_for(lambda: me.inbox("13900000004"), timeout=10, interval=0.2)[0]
        me.css(f"#{row_id} button.reply").click()
        assert me.css("#reply-phone").get_attribute("value") == "13900000004"
        me.fill("#reply-content", "收到 TD")
        me.submit("#reply-form")
        me.wait_text("13900000004", ".flash")
        hits = receiver.wait_for(2, timeout=10)
        assert hits[-1].m == "13900000004"
        assert hits[-1].c == "收到 TD"

        me.open("/console/replies")
        me.click(me.css("#replies tbody a"))
        attempts = wait_for(
            lambda: (me.driver.refresh(), me.css("#attempts").text)[1],
            lambda text: "200" in text,
            timeout=10,
            interval=0.5,
        )
        assert "ms" in attempts


def test_a_revoked_api_key_is_refused_by_sms(
    shared_server: ServerProcess, me: Page, customer: Customer
) -> None:
    me.open("/console/keys")
    me.submit("form[action='/console/keys']")
    key = me.css("#new-key").text
    assert len(key) == 32
    shared_server.wait_synced()
    assert (
        sms(shared_server, customer.username, key, "13900000005", SIGN + "with the new key") == "0"
    )
    me.open("/console/keys")
    me.click(me.css(f"tr[data-key='{key[:4]}'] button.danger"))
    me.wait_text("ApiKey", ".flash")
    shared_server.wait_synced()
    assert (
        sms(shared_server, customer.username, key, "13900000006", SIGN + "after revoking") == "30"
    )
    # The other keys still work.
    assert (
        sms(shared_server, customer.username, customer.api_key, "13900000006", SIGN + "old key")
        == "0"
    )


def test_operator_pages_words_carriers_and_replies(shared_server: ServerProcess, ops: Page) -> None:
    ops.open("/ops/words")
    ops.fill("#words", "违禁词甲")
    ops.submit("form[action='/ops/words']")
    ops.wait_text("1", ".flash")
    assert "违禁词甲" in ops.css("#word-list").text
    shared_server.wait_synced()  # the filter the server runs with has it now
    ops.fill("#text", "这里有违禁词甲")
    ops.submit("form[action='/ops/words/test']")
    ops.wait_text("违禁词甲", "#test-result")
    ops.open("/ops/carriers")
    assert "simulator" in ops.css("#carriers").text
    ops.open("/ops/replies")
    assert ops.css("#unmatched")


def test_english_by_the_browsers_language(shared_server: ServerProcess, customer: Customer) -> None:
    for page in browser_page(shared_server.url, "en-US"):
        page.sign_in("customer", customer.username, customer.password)
        assert "Dashboard" in page.css("h1").text
        assert "Sent today" in page.text()
        page.click(page.css("a.lang"))  # the switch: to Chinese
        page.wait_text("概览", "h1")


CUSTOMER_PAGES = ["/console", "/console/send", "/console/messages", "/console/inbox",
                  "/console/replies", "/console/templates", "/console/keys",
                  "/console/settings", "/console/ledger"]  # fmt: skip
OPERATOR_PAGES = ["/ops", "/ops/templates", "/ops/words", "/ops/carriers", "/ops/replies",
                  "/ops/audit"]  # fmt: skip
UNLABELLED = """
return [...document.querySelectorAll('input, select, textarea')]
  .filter(e => e.type !== 'hidden')
  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
  .map(e => e.name || e.id);
"""
OVERFLOW = """
const width = document.documentElement.clientWidth;
if (document.documentElement.scrollWidth <= width) return [];
return [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > width + 1)
  .map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right));
"""


def test_every_field_has_a_label_and_no_page_overflows_a_phone(
    shared_server: ServerProcess, customer: Customer, operator_name: str
) -> None:
    for page in browser_page(shared_server.url, "zh-CN"):
        page.sign_in("customer", customer.username, customer.password)
        page.phone()
        for path in CUSTOMER_PAGES:
            page.open(path)
            if path == "/console/inbox":  # its rows come by server-sent events
                page.wait_text("1390000", "#inbox tbody")
            assert page.driver.execute_script(UNLABELLED) == [], path
            assert page.driver.execute_script(OVERFLOW) == [], path
        page.driver.delete_all_cookies()
        page.sign_in("operator", operator_name, OPERATOR_PASSWORD)
        for path in [*OPERATOR_PAGES, f"/ops/accounts/{customer.username}"]:
            page.open(path)
            assert page.driver.execute_script(UNLABELLED) == [], path
            assert page.driver.execute_script(OVERFLOW) == [], path
