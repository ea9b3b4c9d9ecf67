"""A fake of Alibaba Cloud SMS (Dysmsapi 2017-05-25), built from its documentation.

It checks a request the way the provider does before anything else: the AccessKeyId must be
known, and the signature recomputed from the request as received must match, with either
signature method V2 (RPC, ``Signature`` parameter, HMAC-SHA1 over the sorted parameters) or
V3 (``Authorization: ACS3-HMAC-SHA256``, over the canonical request of the signed headers).
Only then ``SendSms`` and ``QuerySendDetails`` are served:

- ``SendSms``: the ``SignName`` must be approved and the ``TemplateCode`` known with exactly
  its parameters; answers ``{"Code": "OK", "BizId": ...}``. A number ending in a scripted
  suffix gets that suffix's error code (e.g. ``isv.AMOUNT_NOT_ENOUGH``).
- ``QuerySendDetails``: ``SendStatus`` 3 (delivered) for every message sent, or 2 for
  numbers in ``undelivered``.

Its verifying code is independent of smsgate's signer (standard library only).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote

from tests.support.fake_http import Answer, Request

JSON = "application/json;charset=utf-8"


def _enc(value: str) -> str:
    return quote(value, safe="-_.~", encoding="utf-8")


@dataclass
class Sent:
    biz_id: str
    phone: str
    sign_name: str
    template_code: str
    params: dict[str, str]
    out_id: str | None


@dataclass
class FakeAliyun:
    keys: dict[str, str]  # AccessKeyId -> secret
    signs: set[str] = field(default_factory=lambda: {"短信宝"})
    templates: dict[str, tuple[str, ...]] = field(default_factory=dict)  # code -> param names
    errors_by_suffix: dict[str, str] = field(default_factory=dict)
    undelivered: set[str] = field(default_factory=set)
    sent: list[Sent] = field(default_factory=list)
    refused_signatures: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(900619746))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: Request) -> Answer:
        params = dict(parse_qsl(request.query, keep_blank_values=True))
        if request.headers.get("content-type", "").startswith("application/x-www-form"):
            params.update(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True))
        auth = request.headers.get("authorization", "")
        if auth.startswith("ACS3-HMAC-SHA256 "):
            problem = self._check_v3(request, auth)
            action = request.headers.get("x-acs-action", "")
        else:
            problem = self._check_v2(request.method, params)
            action = params.get("Action", "")
        if problem is not None:
            return problem
        if action == "SendSms":
            return self._send(params)
        if action == "QuerySendDetails":
            return self._details(params)
        return _answer(404, {"Code": "InvalidAction.NotFound", "Message": action})

    # -- signature checks, as the provider documents them --------------------------------

    def _check_v2(self, method: str, params: dict[str, str]) -> Answer | None:
        secret = self.keys.get(params.get("AccessKeyId", ""))
        if secret is None:
            return _answer(404, {"Code": "InvalidAccessKeyId.NotFound"})
        if params.get("SignatureMethod") != "HMAC-SHA1" or "Signature" not in params:
            return _answer(400, {"Code": "IncompleteSignature"})
        query = "&".join(
            f"{_enc(k)}={_enc(v)}" for k, v in sorted(params.items()) if k != "Signature"
        )
        to_sign = f"{method}&%2F&{_enc(query)}"
        mac = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
        if not hmac.compare_digest(base64.b64encode(mac).decode(), params["Signature"]):
            return self._bad_signature()
        return None

    def _check_v3(self, request: Request, auth: str) -> Answer | None:
        fields = dict(part.strip().split("=", 1) for part in auth.split(" ", 1)[1].split(","))
        secret = self.keys.get(fields.get("Credential", ""))
        if secret is None:
            return _answer(404, {"Code": "InvalidAccessKeyId.NotFound"})
        signed = fields.get("SignedHeaders", "").split(";")
        if not {"host", "x-acs-action", "x-acs-content-sha256", "x-acs-date"} <= set(signed):
            return _answer(400, {"Code": "IncompleteSignature"})
        payload_hash = hashlib.sha256(request.body).hexdigest()
        if request.headers.get("x-acs-content-sha256") != payload_hash:
            return self._bad_signature()
        query = "&".join(
            f"{quote(k, safe='~')}={quote(v, safe='~')}"
            for k, v in sorted(parse_qsl(request.query, keep_blank_values=True))
        )
        headers = "".join(f"{name}:{request.headers.get(name, '').strip()}\n" for name in signed)
        canonical = "\n".join(
            [request.method, request.path or "/", query, headers, ";".join(signed), payload_hash]
        )
        to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
        expected = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, fields.get("Signature", "")):
            return self._bad_signature()
        return None

    def _bad_signature(self) -> Answer:
        self.refused_signatures += 1
        return _answer(400, {"Code": "SignatureDoesNotMatch", "Message": "signature mismatch"})

    # -- the API --------------------------------------------------------------------------

    def _send(self, params: dict[str, str]) -> Answer:
        phone = params.get("PhoneNumbers", "")
        for suffix, code in self.errors_by_suffix.items():
            if phone.endswith(suffix):
                return _answer(200, {"Code": code, "Message": code, "RequestId": "r"})
        if params.get("SignName") not in self.signs:
            return _answer(200, {"Code": "isv.SMS_SIGNATURE_ILLEGAL", "Message": "sign"})
        names = self.templates.get(params.get("TemplateCode", ""))
        if names is None:
            return _answer(200, {"Code": "isv.SMS_TEMPLATE_ILLEGAL", "Message": "template"})
        values = json.loads(params.get("TemplateParam") or "{}")
        if set(values) != set(names):
            return _answer(200, {"Code": "isv.TEMPLATE_MISSING_PARAMETERS", "Message": "params"})
        with self._lock:
            biz_id = f"{next(self._ids)}^0"
            self.sent.append(
                Sent(
                    biz_id,
                    phone,
                    params["SignName"],
                    params["TemplateCode"],
                    values,
                    params.get("OutId"),
                )
            )
        return _answer(200, {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": "r"})

    def _details(self, params: dict[str, str]) -> Answer:
        rows = [
            {
                "PhoneNum": s.phone,
                "SendStatus": 2 if s.phone in self.undelivered else 3,
                "ErrCode": "IS_CLOSE" if s.phone in self.undelivered else "DELIVERED",
                "TemplateCode": s.template_code,
                "SendDate": "2026-12-04 08:00:00",
                "ReceiveDate": "2026-12-04 08:00:05",
                "OutId": s.out_id,
            }
            for s in self.sent
            if s.biz_id == params.get("BizId") and s.phone == params.get("PhoneNumber")
        ]
        return _answer(
            200,
            {
                "Code": "OK",
                "Message": "OK",
                "TotalCount": len(rows),
                "SmsSendDetailDTOs": {"SmsSendDetailDTO": rows},
            },
        )


def _answer(status: int, body: dict[str, object]) -> Answer:
    body.setdefault("RequestId", "F655A8D5-B967-440B-8683-DAD6FF8DE990")
    return status, JSON, json.dumps(body, ensure_ascii=False).encode("utf-8")
