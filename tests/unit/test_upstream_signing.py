"""Request signing against the worked examples the providers publish in their own docs.

- Alibaba Cloud, "Signature mechanism" of the RPC API (signature method V2): DescribeRegions
  with AccessKeyId ``testid`` and secret ``testsecret``; the page prints the string to sign and
  the signature ``CT9X0VtwR86fNWSnsc6v8YGOjuE=``.
- Tencent Cloud, "Signature v3" (API 3.0, TC3-HMAC-SHA256): DescribeInstances with SecretId
  ``AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE`` and key ``Gu5t9xGARNpq86cd98joQYCN3EXAMPLE`` at
  timestamp 1551113065; the page prints the canonical request, the string to sign and the
  signature ``72e494ea...5168``.
"""

from __future__ import annotations

from smsgate.carriers import signing

ALIYUN_PARAMS = {
    "TimeStamp": "2016-02-23T12:46:24Z",
    "Format": "XML",
    "AccessKeyId": "testid",
    "Action": "DescribeRegions",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
    "Version": "2014-05-26",
    "SignatureVersion": "1.0",
}
# (Some copies of the page render each %26 as "&"; the signature below only follows from %26.)
ALIYUN_STRING_TO_SIGN = (
    "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML"
    "%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"
    "%26SignatureVersion%3D1.0%26TimeStamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
)

TC3_PAYLOAD = (
    b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
)
TC3_CANONICAL = (
    "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n"
    "\ncontent-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
)
TC3_STRING_TO_SIGN = (
    "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"
    "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
)
TC3_SIGNATURE = "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"


def test_aliyun_string_to_sign_is_the_documented_one() -> None:
    assert signing.aliyun_string_to_sign("GET", ALIYUN_PARAMS) == ALIYUN_STRING_TO_SIGN


def test_aliyun_signature_is_the_documented_one() -> None:
    assert signing.aliyun_signature("GET", ALIYUN_PARAMS, "testsecret") == (
        "CT9X0VtwR86fNWSnsc6v8YGOjuE="
    )


def test_aliyun_signature_ignores_a_signature_parameter_already_present() -> None:
    signed = {**ALIYUN_PARAMS, "Signature": "anything"}
    assert signing.aliyun_signature("GET", signed, "testsecret") == "CT9X0VtwR86fNWSnsc6v8YGOjuE="


def test_aliyun_percent_encoding_is_rfc3986_utf8() -> None:
    # a space is %20 (never +), * and ~ per RFC 3986, Chinese as UTF-8 bytes
    assert signing.percent_encode("a b*~【码】") == "a%20b%2A~%E3%80%90%E7%A0%81%E3%80%91"


def test_tc3_canonical_request_is_the_documented_one() -> None:
    canonical = signing.tc3_canonical_request(
        "POST", "", "application/json; charset=utf-8", "cvm.tencentcloudapi.com", TC3_PAYLOAD
    )
    assert canonical == TC3_CANONICAL


def test_tc3_string_to_sign_is_the_documented_one() -> None:
    assert signing.tc3_string_to_sign(1551113065, "cvm", TC3_CANONICAL) == TC3_STRING_TO_SIGN


def test_tc3_signature_is_the_documented_one() -> None:
    signature = signing.tc3_signature(
        "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", 1551113065, "cvm", TC3_STRING_TO_SIGN
    )
    assert signature == TC3_SIGNATURE


def test_tc3_authorization_header_is_the_documented_one() -> None:
    header = signing.tc3_authorization(
        "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
        "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
        "cvm",
        "cvm.tencentcloudapi.com",
        1551113065,
        TC3_PAYLOAD,
    )
    assert header == (
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/"
        f"tc3_request, SignedHeaders=content-type;host, Signature={TC3_SIGNATURE}"
    )


def test_tc3_date_is_the_utc_day() -> None:
    # 1551113065 is 2019-02-26 00:44:25 in UTC+8: the scope still says the 25th
    assert signing.tc3_date(1551113065) == "2019-02-25"
