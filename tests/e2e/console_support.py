"""The console in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`, which .ci/run installs) driven by Selenium, and a plain HTTP client
that signs in like a browser does (for the security tests).

Selenium is pointed at both executables, so Selenium Manager never runs (it would try to
download a browser and a driver).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator

import httpx
import pytest

from tests.support.waiting import wait_for

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')
WAIT = 10.0


def browser_or_skip() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing} missing: .ci/run installs chromium and chromium-driver")
        pytest.skip(f"{missing} missing (apt-get install chromium chromium-driver)")


def make_browser(lang: str = "zh-CN", width: int = 1280, height: int = 900):  # type: ignore[no-untyped-def]
    """A headless Chromium that speaks ``lang`` and reaches nothing but 127.0.0.1."""
    browser_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        f"--window-size={width},{height}",
        f"--lang={lang}",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    ):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"intl.accept_languages": lang})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.implicitly_wait(0)
    return driver


class Page:
    """A Selenium driver with the few moves the console tests make."""

    def __init__(self, driver, base: str) -> None:  # type: ignore[no-untyped-def]
        self.driver = driver
        self.base = base

    def phone(self, on: bool = True) -> None:
        """Emulate a phone's screen (390 x 844 CSS pixels), or stop emulating it."""
        if on:
            metrics = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}
            self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        else:
            self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def css(self, selector: str):  # type: ignore[no-untyped-def]
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str) -> list:  # type: ignore[type-arg]
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def fill(self, selector: str, value: str) -> None:
        field = self.css(selector)
        field.clear()
        field.send_keys(value)

    def text(self) -> str:
        return str(self.css("main").text)

    def wait_text(self, wanted: str, selector: str = "main", timeout: float = WAIT) -> str:
        return wait_for(
            lambda: self._text_of(selector), lambda t: wanted in t, timeout=timeout, interval=0.2
        )

    def _text_of(self, selector: str) -> str:
        from selenium.common.exceptions import StaleElementReferenceException

        try:
            return " ".join(e.text for e in self.all(selector))
        except StaleElementReferenceException:
            return ""

    def inbox(self, phone: str) -> list[tuple[str, str]]:
        """(row id, state) of the live inbox's rows for ``phone``, read in one step (rows
        are replaced as states change, so element handles would go stale)."""
        rows = self.driver.execute_script(
            "return [...document.querySelectorAll('#inbox tbody tr')]"
            ".filter(r => r.querySelector('.phone').textContent === arguments[0])"
            ".map(r => [r.id, r.dataset.state]);",
            phone,
        )
        return [(str(i), str(s)) for i, s in rows]

    def sign_in(self, role: str, username: str, password: str) -> None:
        self.open("/signin")
        self.css(f"input[name=role][value={role}]").click()
        self.fill("#username", username)
        self.fill("#password", password)
        self.submit("form[action='/signin']")
        wait_for(lambda: self.driver.current_url, lambda u: "/signin" not in u, timeout=WAIT)

    def submit(self, form: str) -> None:
        self.click(self.css(f"{form} button[type=submit]"))

    def click(self, element) -> None:  # type: ignore[no-untyped-def]
        """Click what loads another page, and wait until the old one is gone."""
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.wait import WebDriverWait

        old = self.css("html")
        element.click()
        WebDriverWait(self.driver, WAIT).until(expected_conditions.staleness_of(old))

    def flash(self) -> str:
        return self.wait_text("", ".flash")


def browser_page(base: str, lang: str = "zh-CN") -> Iterator[Page]:
    driver = make_browser(lang)
    try:
        yield Page(driver, base)
    finally:
        driver.quit()


# -- a plain HTTP client that signs in ---------------------------------------------------


def csrf_of(html: str) -> str:
    found = CSRF_RE.search(html)
    assert found, html[:500]
    return found.group(1)


OPEN: list[httpx.Client] = []  # closed by `close_clients` after each test


def new_client(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, trust_env=False, follow_redirects=False, timeout=10)
    OPEN.append(client)
    return client


def close_clients() -> None:
    while OPEN:
        OPEN.pop().close()


def signed_in(base: str, role: str, username: str, password: str) -> httpx.Client:
    client = new_client(base)
    token = csrf_of(client.get("/signin").text)
    answer = client.post(
        "/signin",
        data={"csrf": token, "role": role, "username": username, "password": password},
    )
    assert answer.status_code == 303, answer.text[-500:]
    return client


def token(client: httpx.Client, path: str) -> str:
    return csrf_of(client.get(path).text)
