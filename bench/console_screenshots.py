"""Screenshots of the console's main pages, in both languages, for the README.

    PYTHONPATH=. python bench/console_screenshots.py [docs/console]

Starts `smsgate serve` on a fresh data directory, fills it through the CLI, the SMSBao API
and the console itself (a month of traffic: messages are sent now, then dated back over 30
days in the database, so the chart has something to show), then photographs the pages in
headless Chromium at desktop and phone widths. Chinese text needs a CJK font
(Debian: `fonts-wqy-zenhei`). Not a test: it asserts nothing.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa
from tests.e2e.console_support import Page, make_browser
from tests.e2e.send_support import SEND_ENV
from tests.e2e.server_support import ServerProcess
from tests.receivers import Receiver

SIGN = "【短信宝】"
OPERATOR, OPERATOR_PW = "ops", "operator-pw-1"
CUSTOMER, CUSTOMER_PW = "shop", "customer-pw-1"
DESKTOP = (1280, 860)


def seed(server: ServerProcess, receiver: Receiver) -> None:
    server.cli("operator", "create", OPERATOR, "--password", OPERATOR_PW)
    server.cli("product", "add", "otp", "验证码 Verification codes", "--template-required")
    server.create_account(5000, username=CUSTOMER, password=CUSTOMER_PW)
    server.create_account(800, username="bakery", password=CUSTOMER_PW)
    server.cli("signature", "add", CUSTOMER, "短信宝")
    server.cli("account", "set", CUSTOMER, "--mo-url", receiver.url())
    server.cli(
        "template", "add", "bakery", "--product", "otp", SIGN + "您的验证码是{code}，5分钟内有效"
    )
    server.cli("words", "add", "赌博", "代开发票")
    server.wait_synced()
    rng = random.Random(7)
    for n in range(160):
        phone = f"139{rng.randrange(10**8):08d}"
        text = SIGN + rng.choice(["您的订单已发货", "会员积分到账", f"验证码 {n:04d}", "预约提醒"])
        httpx.get(
            f"{server.url}/sms",
            params={"u": CUSTOMER, "p": _md5(CUSTOMER_PW), "m": phone, "c": f"{text} #{n}"},
            trust_env=False,
        )
    time.sleep(2)  # the simulator reports
    _spread_over_a_month(server, rng)


def _spread_over_a_month(server: ServerProcess, rng: random.Random) -> None:
    engine = sa.create_engine(server.database_url)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        ids = [r[0] for r in conn.execute(sa.text("SELECT id FROM messages ORDER BY id"))]
        for i, mid in enumerate(ids[:-12]):  # the newest dozen stay today
            back = timedelta(days=rng.randrange(1, 30), minutes=rng.randrange(600))
            when = (now - back).replace(tzinfo=None)
            state = "undelivered" if i % 11 == 0 else ("failed" if i % 29 == 0 else "delivered")
            conn.execute(
                sa.text(
                    "UPDATE messages SET created_at = :t, done_at = :t, state = :s WHERE id = :i"
                ),
                {"t": when, "s": state, "i": mid},
            )
    engine.dispose()


def _md5(text: str) -> str:
    import hashlib

    return hashlib.md5(text.encode()).hexdigest()


def shoot(server: ServerProcess, out: Path, lang: str) -> None:
    suffix = "zh" if lang.startswith("zh") else "en"
    driver = make_browser(lang, *DESKTOP)
    page = Page(driver, server.url)
    try:
        page.sign_in("customer", CUSTOMER, CUSTOMER_PW)
        page.open("/console")
        driver.save_screenshot(str(out / f"dashboard-{suffix}.png"))
        page.open("/console/inbox")
        time.sleep(1.5)
        httpx.get(
            f"{server.url}/sms",
            params={
                "u": CUSTOMER,
                "p": _md5(CUSTOMER_PW),
                "m": "13912345678",
                "c": SIGN + "刚刚发送 just sent " + suffix,
            },
            trust_env=False,
        )
        time.sleep(0.4)
        if page.all("#reply-phone"):
            page.fill("#reply-phone", "13912345678")
            page.fill("#reply-content", "收到，谢谢 TD")
        driver.save_screenshot(str(out / f"inbox-{suffix}.png"))
        page.submit("#reply-form")
        time.sleep(1.5)
        page.open("/console/replies")
        page.css("#replies tbody a").click()
        driver.save_screenshot(str(out / f"reply-{suffix}.png"))
        page.phone()
        page.open("/console")
        driver.save_screenshot(str(out / f"phone-{suffix}.png"))
        page.phone(False)
        driver.delete_all_cookies()  # the operator signs in, in a fresh session
        if suffix == "en":
            driver.get(server.url + "/lang?to=en&next=/signin")
        page.sign_in("operator", OPERATOR, OPERATOR_PW)
        page.open("/ops")
        driver.save_screenshot(str(out / f"ops-accounts-{suffix}.png"))
        page.open("/ops/templates")
        driver.save_screenshot(str(out / f"ops-templates-{suffix}.png"))
    finally:
        driver.quit()


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/console")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, Receiver() as receiver:
        data = Path(tmp)
        server = ServerProcess(data, None, dict(SEND_ENV))
        server.start()
        try:
            seed(server, receiver)
            shoot(server, out, "zh-CN")
            shoot(server, out, "en-US")
        finally:
            server.close()
    print(f"screenshots in {out}")


if __name__ == "__main__":
    main()
