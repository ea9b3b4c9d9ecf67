"""The fakes of Alibaba Cloud and Tencent Cloud SMS, proven right by the providers' own SDKs.

Each official SDK from PyPI (``alibabacloud-dysmsapi20170525``, ``tencentcloud-sdk-python-sms``)
is pointed at the fake over a real socket: a correctly signed call is accepted and served, a
call signed with the wrong secret, or a captured request whose signature is altered, is
refused as the provider refuses it. The carriers are then tested against the same fakes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from alibabacloud_dysmsapi20170525 import models as ali_models
from alibabacloud_dysmsapi20170525.client import Client as AliClient
from alibabacloud_tea_openapi import models as open_api_models
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
    TencentCloudSDKException,
)
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import models as tc_models
from tencentcloud.sms.v20210111 import sms_client

from tests.support.fake_aliyun import FakeAliyun
from tests.support.fake_http import FakeServer, serving
from tests.support.fake_tencent import FakeTencent

ALI_ID, ALI_SECRET = "LTAI5tExampleKeyId", "ExampleSecretForTheFake0123456"
TC_ID, TC_KEY = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"


@pytest.fixture
def aliyun() -> Iterator[tuple[FakeAliyun, FakeServer]]:
    fake = FakeAliyun(keys={ALI_ID: ALI_SECRET}, templates={"SMS_153055065": ("code",)})
    with serving(fake) as server:
        yield fake, server


@pytest.fixture
def tencent() -> Iterator[tuple[FakeTencent, FakeServer]]:
    fake = FakeTencent(keys={TC_ID: TC_KEY}, templates={"449739": 1})
    with serving(fake) as server:
        yield fake, server


def _ali_client(server: FakeServer, secret: str, algorithm: str | None) -> AliClient:
    config = open_api_models.Config(
        access_key_id=ALI_ID,
        access_key_secret=secret,
        endpoint=f"127.0.0.1:{server.port}",
        protocol="http",
    )
    if algorithm is not None:
        config.signature_algorithm = algorithm
    return AliClient(config)


def _ali_send(client: AliClient) -> ali_models.SendSmsResponse:
    return client.send_sms(
        ali_models.SendSmsRequest(
            phone_numbers="13800138000",
            sign_name="短信宝",
            template_code="SMS_153055065",
            template_param=json.dumps({"code": "1234"}),
        )
    )


@pytest.mark.parametrize("algorithm", [None, "v2"], ids=["acs3-hmac-sha256", "rpc-hmac-sha1"])
def test_aliyun_sdk_is_accepted_by_the_fake(
    aliyun: tuple[FakeAliyun, FakeServer], algorithm: str | None
) -> None:
    fake, server = aliyun
    response = _ali_send(_ali_client(server, ALI_SECRET, algorithm))
    assert response.body.code == "OK"
    assert response.body.biz_id == fake.sent[0].biz_id
    assert fake.sent[0].params == {"code": "1234"}
    assert fake.sent[0].sign_name == "短信宝"
    assert fake.refused_signatures == 0


@pytest.mark.parametrize("algorithm", [None, "v2"], ids=["acs3-hmac-sha256", "rpc-hmac-sha1"])
def test_aliyun_sdk_with_a_wrong_secret_is_refused(
    aliyun: tuple[FakeAliyun, FakeServer], algorithm: str | None
) -> None:
    fake, server = aliyun
    with pytest.raises(Exception, match="SignatureDoesNotMatch"):
        _ali_send(_ali_client(server, ALI_SECRET + "x", algorithm))
    assert fake.sent == []
    assert fake.refused_signatures == 1


def test_aliyun_captured_sdk_request_with_an_altered_signature_is_refused(
    aliyun: tuple[FakeAliyun, FakeServer],
) -> None:
    fake, server = aliyun
    _ali_send(_ali_client(server, ALI_SECRET, "v2"))
    original = server.requests[-1]
    tampered = original.query.replace("Signature=", "Signature=A", 1)
    answer = httpx.post(
        f"{server.url}/?{tampered}",
        content=original.body,
        headers={"content-type": original.headers.get("content-type", "")},
    )
    assert answer.json()["Code"] == "SignatureDoesNotMatch"
    assert len(fake.sent) == 1


def _tc_client(server: FakeServer, key: str) -> sms_client.SmsClient:
    http = HttpProfile(endpoint=f"127.0.0.1:{server.port}", protocol="http")
    return sms_client.SmsClient(
        credential.Credential(TC_ID, key), "ap-guangzhou", ClientProfile(httpProfile=http)
    )


def _tc_send(client: sms_client.SmsClient) -> tc_models.SendSmsResponse:
    request = tc_models.SendSmsRequest()
    request.PhoneNumberSet = ["+8613800138000"]
    request.SmsSdkAppId = "1400006666"
    request.SignName = "短信宝"
    request.TemplateId = "449739"
    request.TemplateParamSet = ["1234"]
    return client.SendSms(request)


def test_tencent_sdk_is_accepted_by_the_fake(tencent: tuple[FakeTencent, FakeServer]) -> None:
    fake, server = tencent
    client = _tc_client(server, TC_KEY)
    response = _tc_send(client)
    status = response.SendStatusSet[0]
    assert status.Code == "Ok"
    assert status.SerialNo == fake.sent[0].serial
    assert fake.sent[0].params == ["1234"]
    pull = tc_models.PullSmsSendStatusRequest()
    pull.Limit, pull.SmsSdkAppId = 10, "1400006666"
    pulled = client.PullSmsSendStatus(pull)
    assert [(s.SerialNo, s.ReportStatus) for s in pulled.PullSmsSendStatusSet] == [
        (fake.sent[0].serial, "SUCCESS")
    ]


def test_tencent_sdk_with_a_wrong_key_is_refused(tencent: tuple[FakeTencent, FakeServer]) -> None:
    fake, server = tencent
    with pytest.raises(TencentCloudSDKException) as refused:
        _tc_send(_tc_client(server, TC_KEY + "x"))
    assert refused.value.code == "AuthFailure.SignatureFailure"
    assert fake.sent == []


def test_tencent_captured_sdk_request_with_an_altered_signature_is_refused(
    tencent: tuple[FakeTencent, FakeServer],
) -> None:
    fake, server = tencent
    _tc_send(_tc_client(server, TC_KEY))
    original = server.requests[-1]
    headers = {
        k: v for k, v in original.headers.items() if k not in ("content-length", "connection")
    }
    replay = httpx.post(server.url + "/", content=original.body, headers=headers)
    assert replay.json()["Response"]["SendStatusSet"][0]["Code"] == "Ok"  # an exact replay passes
    signature = headers["authorization"].rsplit("Signature=", 1)[1]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    headers["authorization"] = headers["authorization"].replace(signature, flipped)
    answer = httpx.post(server.url + "/", content=original.body, headers=headers)
    assert answer.json()["Response"]["Error"]["Code"] == "AuthFailure.SignatureFailure"
    assert len(fake.sent) == 2
