"""Opt-out keyword recognition in user replies."""

from __future__ import annotations

import pytest

from smsgate.core.optout import is_optout_keyword


@pytest.mark.parametrize(
    "text",
    [
        "TD",
        "td",
        "Td",
        "T",
        "t",
        "N",
        "n",
        "R",
        "r",
        "退订",
        " TD ",
        "TD\n",
        "\u3000退订\u3000",  # full-width spaces
        "ＴＤ",  # full-width letters
        "ｔｄ",
        "退订。",
        "TD.",
        "TD!",
        "TD！",
        "。退订",
        "\u200bTD\u200b",  # zero-width characters
    ],
)
def test_keywords(text: str) -> None:
    assert is_optout_keyword(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "。",
        "TD please",
        "T D",
        "TDD",
        "退订了吗",
        "不退订",
        "Y",
        "OK",
        "TX",
        "谢谢",
        "1",
    ],
)
def test_not_keywords(text: str) -> None:
    assert not is_optout_keyword(text)
