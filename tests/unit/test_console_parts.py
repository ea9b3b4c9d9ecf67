"""The console's pure parts: the session cookie's signature, the language pick and the
Chinese catalogue's coverage, the 30-day summaries and their chart."""

from __future__ import annotations

import re
import stat
from datetime import date
from pathlib import Path

import pytest

from smsgate.console import i18n
from smsgate.console.catalogue import ZH_TEXT
from smsgate.console.chart import daily_bars
from smsgate.console.sessions import CUSTOMER, Session, Signer, secret_key
from smsgate.core.accounts import AccountStatus, LedgerKind, TemplateStatus
from smsgate.core.reports import DailyCount, daily_summaries, delivery_rate
from smsgate.core.states import MessageState, PushState

CONSOLE = Path(__file__).resolve().parents[2] / "src" / "smsgate" / "console"
NOW = 1_800_000_000.0


def signed(key: bytes = b"k" * 32) -> tuple[Signer, str]:
    signer = Signer(key)
    session = Session.anonymous(NOW, 3600).signed_in(CUSTOMER, "alice", NOW, 3600)
    return signer, signer.dump(session)


def test_a_session_survives_its_round_trip() -> None:
    signer, cookie = signed()
    loaded = signer.load(cookie, NOW + 10)
    assert loaded is not None
    assert (loaded.role, loaded.user) == (CUSTOMER, "alice")
    assert loaded.csrf_ok(loaded.csrf)
    assert not loaded.csrf_ok("")
    assert not loaded.csrf_ok(loaded.csrf + "x")


@pytest.mark.parametrize(
    "tamper",
    [
        lambda c: c.replace(".", "x."),  # payload changed
        lambda c: c[:-2] + ("AA" if c[-2:] != "AA" else "BB"),  # signature changed
        lambda c: c.split(".")[0],  # no signature
        lambda c: "",
        lambda c: "a.b.c",
        lambda c: "!!!.???",
    ],
)
def test_a_tampered_cookie_is_no_session(tamper) -> None:  # type: ignore[no-untyped-def]
    signer, cookie = signed()
    assert signer.load(tamper(cookie), NOW) is None


def test_another_key_or_an_expired_session_is_no_session() -> None:
    _signer, cookie = signed(b"a" * 32)
    assert Signer(b"b" * 32).load(cookie, NOW) is None
    assert Signer(b"a" * 32).load(cookie, NOW + 3601) is None


def test_sign_in_changes_the_csrf_token() -> None:
    anonymous = Session.anonymous(NOW, 60)
    assert anonymous.signed_in(CUSTOMER, "alice", NOW, 60).csrf != anonymous.csrf


def test_the_generated_secret_is_private_and_kept(tmp_path: Path) -> None:
    first = secret_key(None, tmp_path / "data")
    assert len(first) >= 32
    assert secret_key(None, tmp_path / "data") == first
    mode = stat.S_IMODE((tmp_path / "data" / "console.key").stat().st_mode)
    assert mode == 0o600
    assert secret_key("x" * 40, tmp_path) == b"x" * 40
    with pytest.raises(ValueError, match="at least 32"):
        secret_key("short", tmp_path)


@pytest.mark.parametrize(
    ("chosen", "header", "lang"),
    [
        (None, None, "zh"),
        (None, "en-US,en;q=0.9", "en"),
        (None, "zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        (None, "fr-FR,en;q=0.5", "en"),
        (None, "fr-FR", "zh"),
        ("en", "zh-CN", "en"),
        ("zh", "en-US", "zh"),
        ("xx", "en", "en"),
    ],
)
def test_the_language(chosen: str | None, header: str | None, lang: str) -> None:
    assert i18n.pick(chosen, header) == lang


def texts_in_the_console() -> set[str]:
    """Every literal given to t(...) in the templates and the console's modules, and the
    navigation labels of the layout."""
    found: set[str] = set()
    call = re.compile(r"""\bt\((?:"([^"]+)"|'([^']+)')\)""")
    for path in [*CONSOLE.rglob("*.html"), *CONSOLE.glob("*.py")]:
        source = path.read_text(encoding="utf-8")
        found |= {a or b for a, b in call.findall(source)}
    base = (CONSOLE / "templates" / "base.html").read_text(encoding="utf-8")
    found |= set(re.findall(r'\("/[a-z/]*", "([^"]+)"\)', base))
    return found


def test_every_console_text_has_its_chinese() -> None:
    missing = sorted(t for t in texts_in_the_console() if t not in ZH_TEXT)
    assert not missing


@pytest.mark.parametrize(
    "values", [MessageState, PushState, TemplateStatus, LedgerKind, AccountStatus]
)
def test_every_state_shown_has_its_chinese(values: type) -> None:
    assert all(v.value in ZH_TEXT for v in values)  # type: ignore[attr-defined]


def test_english_is_the_key_and_chinese_the_default() -> None:
    assert i18n.translate("Sign in", "en") == "Sign in"
    assert i18n.translate("Sign in", "zh") == "登录"
    assert i18n.translate("not in the catalogue", "zh") == "not in the catalogue"


def test_days_without_messages_are_empty_and_unknown_days_ignored() -> None:
    days = [date(2026, 1, 1), date(2026, 1, 2)]
    summaries = daily_summaries(
        [
            DailyCount(date(2026, 1, 1), "delivered", 3),
            DailyCount(date(2026, 1, 1), "failed", 1),
            DailyCount(date(2025, 12, 1), "delivered", 9),
        ],
        days,
    )
    assert [s.total for s in summaries] == [4, 0]
    assert summaries[0].states == {"delivered": 3, "failed": 1}


def test_the_delivery_rate_counts_final_outcomes_only() -> None:
    assert delivery_rate({}) is None
    assert delivery_rate({"submitted": 5}) is None
    assert delivery_rate({"delivered": 3, "undelivered": 1, "submitted": 10}) == 0.75


def test_the_chart_has_a_bar_part_per_state_and_escapes_its_label() -> None:
    days = daily_summaries(
        [DailyCount(date(2026, 1, 2), "delivered", 2), DailyCount(date(2026, 1, 2), "failed", 1)],
        [date(2026, 1, 1), date(2026, 1, 2)],
    )
    svg = str(daily_bars(days, '<30 "days">'))
    assert svg.startswith("<svg")
    assert 'aria-label="&lt;30 &#34;days&#34;&gt;"' in svg
    assert svg.count('class="s-delivered"') == 1
    assert svg.count('class="s-failed"') == 1
    assert "<title>2026-01-02: 3 delivered 2, failed 1</title>" in svg
