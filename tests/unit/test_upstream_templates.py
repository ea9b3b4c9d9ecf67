"""Template-based upstreams: which mapped template a message is, its values, and the 54 rule."""

from __future__ import annotations

import pytest

from smsgate import errors
from smsgate.core.templates import compile_template
from smsgate.core.upstream_templates import (
    UpstreamTemplate,
    check_upstream_templates,
    match_upstream,
)
from smsgate.errors import Rejected

CODE = UpstreamTemplate(
    1, "ali", "SMS_1", compile_template("【短信宝】验证码{code}，{minutes}分钟有效")
)
PARCEL = UpstreamTemplate(2, "ali", "SMS_2", compile_template("【短信宝】包裹{no}已到{place}"))
MAPPED = {"ali": [CODE, PARCEL]}


def test_match_gives_code_signature_and_values_in_placeholder_order() -> None:
    send = match_upstream("【短信宝】包裹SF1234已到北门驿站", MAPPED["ali"])
    assert send is not None
    assert send.code == "SMS_2"
    assert send.sign_name == "短信宝"
    assert dict(send.values) == {"no": "SF1234", "place": "北门驿站"}
    assert send.ordered_values() == ["SF1234", "北门驿站"]


def test_match_none_when_no_template_fits() -> None:
    assert match_upstream("【短信宝】随便说点什么", MAPPED["ali"]) is None


def test_route_through_a_template_carrier_refuses_unmapped_content_with_54() -> None:
    with pytest.raises(Rejected) as refused:
        check_upstream_templates("【短信宝】随便说点什么", ["ali", "b"], {"ali"}, MAPPED)
    assert refused.value.code == errors.TEMPLATE_REQUIRED


def test_every_template_carrier_of_the_route_needs_a_mapping() -> None:
    content = "【短信宝】验证码1234，5分钟有效"
    check_upstream_templates(content, ["ali"], {"ali", "tc"}, MAPPED)  # tc not on the route
    with pytest.raises(Rejected):
        check_upstream_templates(content, ["ali", "tc"], {"ali", "tc"}, MAPPED)


def test_route_without_template_carriers_takes_any_content() -> None:
    check_upstream_templates("【短信宝】随便说点什么", ["smsgate-b", "sim"], {"ali"}, MAPPED)
