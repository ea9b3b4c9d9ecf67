"""The 【…】 signature: extraction and the registered-signature check."""

from __future__ import annotations

import pytest

from smsgate import errors
from smsgate.core.signatures import check_signature, extract_signature
from smsgate.errors import Rejected

REGISTERED = frozenset({"短信宝", "ACME Inc"})


@pytest.mark.parametrize(
    ("content", "signature"),
    [
        ("【短信宝】您的验证码是4564", "短信宝"),
        ("您的验证码是4564【短信宝】", "短信宝"),  # at the end
        ("  【短信宝】您的验证码是4564", "短信宝"),  # whitespace before the bracket
        ("\u3000【短信宝】正文", "短信宝"),  # full-width space
        ("\ufeff【短信宝】正文", "短信宝"),  # byte-order mark
        ("正文【短信宝】\n", "短信宝"),  # trailing newline after an end signature
        ("【短信宝】", "短信宝"),  # signature only
        ("【ACME Inc】hello", "ACME Inc"),  # inner space is allowed
        ("【abc】x", "abc"),  # 3 characters
        ("【一二三四五六七八九十】x", "一二三四五六七八九十"),  # 10 characters
    ],
)
def test_extract(content: str, signature: str) -> None:
    assert extract_signature(content) == signature


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("您的验证码是4564", "missing"),
        ("", "missing"),
        ("【】正文", "3-10"),
        ("【ab】正文", "3-10"),
        ("【一二三四五六七八九十一】正文", "3-10"),
        ("【短信宝正文", "unbalanced"),
        ("短信宝】正文", "unbalanced"),
        ("【短信宝】正文【短信宝】", "more than one"),  # two signatures
        ("【短信宝】【另一个】正文", "more than one"),
        ("【短【信宝】】正文", "more than one"),  # nested
        ("【短信宝】您的订单【12345】已发货", "more than one"),  # brackets in the body
        ("正文【短信宝】正文", "start or the end"),  # in the middle
        ("】短信宝【", "start or the end"),  # reversed
        ("【 短信宝】正文", "blanks"),  # blank at an inner edge
        ("【短信宝 】正文", "blanks"),
        ("【短信\u200b宝】正文", "unprintable"),
        ("【短信\n宝】正文", "unprintable"),
    ],
)
def test_extract_rejects(content: str, why: str) -> None:
    with pytest.raises(Rejected) as info:
        extract_signature(content)
    assert info.value.code is errors.BAD_SIGNATURE
    assert why in info.value.detail


def test_signature_length_counts_non_bmp_as_two() -> None:
    assert extract_signature("【a😀】x") == "a😀"  # 3 code units
    with pytest.raises(Rejected):
        extract_signature("【😀】x")  # 2 code units


def test_check_accepts_registered_signature() -> None:
    assert check_signature("【短信宝】您的验证码是4564", REGISTERED) == "短信宝"


def test_check_accepts_registered_signature_at_end() -> None:
    assert check_signature("hello【ACME Inc】", REGISTERED) == "ACME Inc"


def test_check_rejects_unregistered_signature_and_names_it() -> None:
    with pytest.raises(Rejected) as info:
        check_signature("【别人家】您的验证码是4564", REGISTERED)
    assert info.value.code is errors.BAD_SIGNATURE
    assert "【别人家】" in info.value.detail
    assert "not registered" in info.value.detail


def test_check_compares_exactly() -> None:
    with pytest.raises(Rejected):
        check_signature("【acme inc】hello", REGISTERED)


def test_check_with_no_registered_signatures_rejects() -> None:
    with pytest.raises(Rejected):
        check_signature("【短信宝】正文", frozenset())


def test_check_rejects_malformed_before_lookup() -> None:
    with pytest.raises(Rejected) as info:
        check_signature("正文", REGISTERED)
    assert "missing" in info.value.detail
