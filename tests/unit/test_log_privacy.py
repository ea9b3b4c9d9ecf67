"""Logs without secrets or personal data (issue 13, finding 7)."""

from __future__ import annotations

import json
import logging

from smsgate.api.logging import (
    JsonFormatter,
    TextFormatter,
    new_request_id,
    redact,
    safe_traceback,
    shorten,
)

TARGET = "/sms?u=alice&p=0123456789abcdef0123456789abcdef&m=13800138000&c=%E9%AA%8C%E8%AF%81"


def test_secrets_phone_numbers_and_content_are_masked_by_default() -> None:
    assert redact(TARGET) == "/sms?u=alice&p=***&m=***&c=***"
    assert redact("/v1/messages?phone=13800138000&limit=5") == "/v1/messages?phone=***&limit=5"


def test_personal_data_is_shown_only_when_asked() -> None:
    shown = redact(TARGET, personal=True)
    assert "p=***" in shown
    assert "m=13800138000" in shown
    assert "c=%E9%AA%8C%E8%AF%81" in shown


def test_long_targets_are_cut() -> None:
    cut = shorten("/sms?c=" + "a" * 70_000)
    assert len(cut) < 600
    assert cut.endswith("...[70007 chars]")


def _failure() -> BaseException:
    try:
        try:
            raise ValueError("content 验证码1234 for 13800138000")
        except ValueError as inner:
            raise RuntimeError("INSERT failed: ('13800138000', '验证码1234')") from inner
    except RuntimeError as outer:
        return outer


def test_tracebacks_name_frames_and_types_never_messages() -> None:
    text = safe_traceback(_failure())
    assert "builtins.RuntimeError" in text
    assert "builtins.ValueError" in text
    assert "in _failure" in text
    assert "13800138000" not in text
    assert "验证码" not in text


def _record(exc: BaseException) -> logging.LogRecord:
    record = logging.LogRecord("smsgate", logging.ERROR, __file__, 1, "boom", None, None)
    record.exc_info = (type(exc), exc, exc.__traceback__)
    record.request_id = new_request_id()
    return record


def test_json_lines_carry_the_request_id_and_a_safe_traceback() -> None:
    record = _record(_failure())
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "boom"
    assert entry["request_id"] == record.request_id
    assert len(entry["request_id"]) == 12
    assert "builtins.RuntimeError" in entry["traceback"]
    assert "13800138000" not in json.dumps(entry)


def test_text_lines_have_a_safe_traceback_too() -> None:
    line = TextFormatter().format(_record(_failure()))
    assert "builtins.RuntimeError" in line
    assert "13800138000" not in line
