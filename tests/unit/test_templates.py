"""Operator-approved templates: compilation, matching, and the template-required check."""

from __future__ import annotations

import pytest

from smsgate import errors
from smsgate.core.templates import (
    PLACEHOLDER_MAX_CHARS,
    Template,
    check_template,
    compile_template,
    match_any,
)
from smsgate.errors import Rejected

CODE = "【短信宝】您的验证码是{code}，{minutes}分钟内有效"


@pytest.fixture
def code_template() -> Template:
    return compile_template(CODE)


# --- compilation -------------------------------------------------------------------------


def test_compile_keeps_text_and_names(code_template: Template) -> None:
    assert code_template.text == CODE
    assert code_template.names == ("code", "minutes")


def test_repeated_name_listed_once() -> None:
    assert compile_template("码{code}，再说一遍{code}").names == ("code",)


def test_chinese_placeholder_names_are_identifiers() -> None:
    template = compile_template("【短信宝】验证码{验证码}。")
    assert template.values("【短信宝】验证码1234。") == {"验证码": "1234"}


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("验证码{code", "unbalanced"),
        ("验证码code}", "unbalanced"),
        ("验证码{code}}", "unbalanced"),
        ("验证码{{code}", "unbalanced"),
        ("验证码{}", "identifier"),
        ("验证码{ code }", "identifier"),
        ("验证码{1code}", "identifier"),
        ("验证码{co-de}", "identifier"),
        ("验证码{a{b}}", "unbalanced"),
        ("验证码{a}{b}", "separated"),
        ("{code}", "literal text"),
    ],
)
def test_malformed_template_is_invalid_input(text: str, why: str) -> None:
    with pytest.raises(errors.InvalidInput, match=why):
        compile_template(text)


def test_max_chars_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        compile_template("a{b}", max_chars=0)


# --- matching ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        "【短信宝】您的验证码是4564，5分钟内有效",
        "【短信宝】您的验证码是A1b2C3，10分钟内有效",
        " 【短信宝】您的验证码是4564，5分钟内有效\n",  # blanks at the edges are ignored
    ],
)
def test_matching_content(code_template: Template, content: str) -> None:
    assert code_template.matches(content)


@pytest.mark.parametrize(
    "content",
    [
        "【短信宝】您的验证码是，5分钟内有效",  # empty value: a placeholder needs 1 character
        "【短信宝】您的验证码是4564，5分钟内有效。",  # extra trailing text
        "前缀【短信宝】您的验证码是4564，5分钟内有效",  # extra leading text
        "【短信宝】你的验证码是4564，5分钟内有效",  # literal differs
        "【短信宝】您的验证码是4564,5分钟内有效",  # half-width comma is a different literal
        "【短信宝】您的验证码是45\n64，5分钟内有效",  # a value never spans a line break
        "【短信宝】您的验证码是45\r64，5分钟内有效",
        "【别的】您的验证码是4564，5分钟内有效",
    ],
)
def test_non_matching_content(code_template: Template, content: str) -> None:
    assert not code_template.matches(content)


def test_values_extracts_placeholders(code_template: Template) -> None:
    assert code_template.values("【短信宝】您的验证码是4564，5分钟内有效") == {
        "code": "4564",
        "minutes": "5",
    }


def test_values_of_non_matching_content_is_none(code_template: Template) -> None:
    assert code_template.values("hello") is None


def test_placeholder_is_non_greedy() -> None:
    template = compile_template("a{x}b{y}")
    assert template.values("a1b2b3") == {"x": "1", "y": "2b3"}


def test_value_ends_at_first_occurrence_of_following_literal() -> None:
    template = compile_template("【短信宝】您的包裹{product}已发货")
    assert template.values("【短信宝】您的包裹已购商品已发货") == {"product": "已购商品"}
    assert not template.matches("【短信宝】您的包裹已发货商品已发货")


def test_crafted_content_with_many_separators_does_not_match() -> None:
    template = compile_template("a{w}，{x}，{y}，{z}b")
    assert not template.matches("a" + "x，" * 249)
    assert template.matches("a1，2，3，4b")


def test_placeholder_length_limit() -> None:
    template = compile_template("code {c}.")
    assert template.matches("code " + "9" * PLACEHOLDER_MAX_CHARS + ".")
    assert not template.matches("code " + "9" * (PLACEHOLDER_MAX_CHARS + 1) + ".")


def test_custom_placeholder_length_limit() -> None:
    template = compile_template("code {c}.", max_chars=4)
    assert template.matches("code 1234.")
    assert not template.matches("code 12345.")


def test_repeated_placeholder_must_repeat_the_same_text() -> None:
    template = compile_template("码{code}，再说一遍{code}")
    assert template.matches("码1234，再说一遍1234")
    assert not template.matches("码1234，再说一遍9999")


@pytest.mark.parametrize(
    ("text", "content"),
    [
        ("价格$5.00 (含税) {n}*[x]", "价格$5.00 (含税) 3*[x]"),
        ("a.b {n}", "a.b 1"),
        ("^start {n} end$", "^start 1 end$"),
        ("反斜杠\\d {n}", "反斜杠\\d 7"),
    ],
)
def test_literal_regex_characters_are_escaped(text: str, content: str) -> None:
    assert compile_template(text).matches(content)


def test_escaped_dot_does_not_match_any_character() -> None:
    assert not compile_template("a.b {n}").matches("axb 1")


def test_double_braces_are_literal_braces() -> None:
    template = compile_template("{{订单}} {id} 已发货")
    assert template.names == ("id",)
    assert template.matches("{订单} 42 已发货")
    assert not template.matches("{{订单}} 42 已发货")


def test_literal_newline_in_template_matches_newline() -> None:
    template = compile_template("第一行{a}\n第二行")
    assert template.matches("第一行x\n第二行")
    assert not template.matches("第一行x 第二行")


def test_templates_compare_by_text() -> None:
    assert compile_template(CODE) == compile_template(CODE)


# --- match_any / check_template ----------------------------------------------------------


def test_match_any_returns_first_matching(code_template: Template) -> None:
    notice = compile_template("【短信宝】您的包裹{id}已到")
    catch = compile_template("【短信宝】{text}已到")
    assert match_any("【短信宝】您的包裹A1已到", [code_template, notice, catch]) is notice


def test_match_any_none_when_nothing_matches(code_template: Template) -> None:
    assert match_any("hello", [code_template]) is None


def test_match_any_empty_list() -> None:
    assert match_any("hello", []) is None


def test_check_template_required_and_matching(code_template: Template) -> None:
    content = "【短信宝】您的验证码是4564，5分钟内有效"
    assert check_template(content, [code_template], required=True) is code_template


def test_check_template_required_and_not_matching(code_template: Template) -> None:
    with pytest.raises(Rejected) as info:
        check_template("【短信宝】随便发点什么", [code_template], required=True)
    assert info.value.code is errors.TEMPLATE_REQUIRED


def test_check_template_required_with_no_templates() -> None:
    with pytest.raises(Rejected) as info:
        check_template("【短信宝】随便发点什么", [], required=True)
    assert info.value.code is errors.TEMPLATE_REQUIRED


def test_check_template_not_required_passes_anything(code_template: Template) -> None:
    assert check_template("【短信宝】随便发点什么", [code_template], required=False) is None
