"""The sensitive-word filter (Aho-Corasick over normalised text)."""

from __future__ import annotations

import pytest

from smsgate import errors
from smsgate.core.words import WordFilter, normalise
from smsgate.errors import Rejected


@pytest.fixture
def words() -> WordFilter:
    return WordFilter.build(["法轮功", "foo", "代开发票", "Bar Baz"])


@pytest.mark.parametrize(
    ("content", "word"),
    [
        ("法轮功", "法轮功"),
        ("【短信宝】法轮功大法好", "法轮功"),
        ("法 轮 功", "法轮功"),
        ("法\u3000轮\u3000功", "法轮功"),  # full-width spaces
        ("法*轮*功", "法轮功"),
        ("法.轮-功_!", "法轮功"),
        ("法，轮。功", "法轮功"),  # full-width punctuation
        ("法😀轮😀功", "法轮功"),  # symbols used as separators
        ("法\u200b轮\u200c功", "法轮功"),  # zero-width space / non-joiner
        ("法\u200d轮\ufeff功", "法轮功"),  # zero-width joiner / BOM
        ("法\n轮\t功", "法轮功"),
        ("foo", "foo"),
        ("FOO", "foo"),
        ("FoO", "foo"),
        ("ＦＯＯ", "foo"),  # full-width letters
        ("ｆｏｏ", "foo"),
        ("f\u200do\u200do", "foo"),
        ("f o o", "foo"),
        ("xxfooxx", "foo"),  # substring match
        ("代 开 发 票", "代开发票"),
        ("barbaz", "Bar Baz"),  # the word's own separators are normalised away too
        ("BAR-BAZ", "Bar Baz"),
    ],
)
def test_finds_disguised_words(words: WordFilter, content: str, word: str) -> None:
    assert words.find(content) == word


@pytest.mark.parametrize(
    "content",
    [
        "",
        "【短信宝】您的验证码是4564，5分钟内有效",
        "今天天气很好，法国轮船功夫茶",  # the characters, but not together
        "fo",
        "f1o1o",  # letters and digits inside a word are not removed
        "法1轮1功",
    ],
)
def test_clean_content_passes(words: WordFilter, content: str) -> None:
    assert words.find(content) is None
    words.check(content)


def test_check_rejects_and_names_the_word(words: WordFilter) -> None:
    with pytest.raises(Rejected) as info:
        words.check("【短信宝】法*轮*功")
    assert info.value.code is errors.SENSITIVE_WORD
    assert info.value.detail == "法轮功"


def test_first_match_is_the_earliest_in_content(words: WordFilter) -> None:
    assert words.find("foo 然后 法轮功") == "foo"
    assert words.find("法轮功 然后 foo") == "法轮功"


def test_words_are_normalised_like_content() -> None:
    wf = WordFilter.build(["ＦＯＯ", "  b*a*d  "])
    assert wf.find("foo") == "ＦＯＯ"
    assert wf.find("BAD") == "  b*a*d  "


def test_words_empty_after_normalisation_are_ignored() -> None:
    wf = WordFilter.build(["", "   ", "***", "\u200b", "。"])
    assert wf.size == 0
    assert wf.find("*** 。") is None


def test_duplicates_after_normalisation_keep_the_first_spelling() -> None:
    wf = WordFilter.build(["foo", "FOO", "ｆｏｏ"])
    assert wf.size == 1
    assert wf.find("FOO") == "foo"


def test_empty_filter_matches_nothing() -> None:
    wf = WordFilter.build([])
    assert wf.size == 0
    assert wf.find("法轮功") is None
    wf.check("法轮功")


def test_build_accepts_any_iterable() -> None:
    wf = WordFilter.build(w for w in ("a1", "b2"))
    assert wf.size == 2
    assert wf.find("xb2") == "b2"


def test_many_words() -> None:
    wf = WordFilter.build(f"词{i:04d}" for i in range(5000))
    assert wf.size == 5000
    assert wf.find("这里有 词 4 9 9 9 出现") == "词4999"
    assert wf.find("这里有 词 5 0 0 0 出现") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ＡＢＣ １２３", "abc123"),
        ("法\u200b轮 功！", "法轮功"),
        ("Straße", "strasse"),
        ("e\u0301", "é"),  # NFKC composes before the mark could be dropped
    ],
)
def test_normalise(text: str, expected: str) -> None:
    assert normalise(text) == expected
