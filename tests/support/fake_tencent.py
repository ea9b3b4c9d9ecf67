"""A fake of Tencent Cloud SMS (API 3.0, version 2021-01-11), built from its documentation.

It checks each request the way the provider does first: ``Authorization: TC3-HMAC-SHA256
Credential=<SecretId>/<date>/sms/tc3_request, SignedHeaders=..., Signature=...`` with a known
SecretId, a date that is the UTC day of ``X-TC-Timestamp``, and a signature recomputed from
the request as received (the signed headers' values, the body's SHA-256). Then it serves:

- ``SendSms``: the ``SmsSdkAppId`` must be ours, the ``SignName`` approved, the
  ``TemplateId`` known with that many parameters; one ``SendStatusSet`` row per number (a
  number ending in a scripted suffix gets that suffix's code).
- ``PullSmsSendStatus``: each sent message's status once (``SUCCESS``, or ``FAIL`` for
  numbers in ``undelivered``).
- ``PullSmsReplyStatus``: replies queued with :meth:`FakeTencent.reply`, once.

Standard library only: its verifying code shares nothing with smsgate's signer.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tests.support.fake_http import Answer, Request

JSON = "application/json"


@dataclass
class Sent:
    serial: str
    phone: str
    sign_name: str
    template_id: str
    params: list[str]
    session: str


@dataclass
class FakeTencent:
    keys: dict[str, str]  # SecretId -> SecretKey
    app_id: str = "1400006666"
    signs: set[str] = field(default_factory=lambda: {"短信宝"})
    templates: dict[str, int] = field(default_factory=dict)  # TemplateId -> parameter count
    codes_by_suffix: dict[str, str] = field(default_factory=dict)
    undelivered: set[str] = field(default_factory=set)
    sent: list[Sent] = field(default_factory=list)
    refused_signatures: int = 0
    _unpulled: list[Sent] = field(default_factory=list)
    _replies: list[dict[str, object]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reply(self, phone: str, content: str, extend_code: str = "") -> None:
        self._replies.append(
            {
                "ExtendCode": extend_code,
                "CountryCode": "86",
                "SubscriberNumber": phone,
                "PhoneNumber": f"+86{phone}",
                "SignName": next(iter(self.signs)),
                "ReplyContent": content,
                "ReplyTime": "2026-12-04 08:00:00",
                "ReplyUnixTime": 1796342400,
            }
        )

    def __call__(self, request: Request) -> Answer:
        problem = self._check(request)
        if problem is not None:
            return _error(*problem)
        payload = json.loads(request.body or b"{}")
        action = request.headers.get("x-tc-action", "")
        if payload.get("SmsSdkAppId") != self.app_id:
            return _error("InvalidParameterValue.SdkAppIdNotExist", "no such SmsSdkAppId")
        if action == "SendSms":
            return self._send(payload)
        if action == "PullSmsSendStatus":
            return self._pull_status()
        if action == "PullSmsReplyStatus":
            replies, self._replies = self._replies, []
            return _ok({"PullSmsReplyStatusSet": replies})
        return _error("InvalidAction", action)

    def _check(self, request: Request) -> tuple[str, str] | None:
        auth = request.headers.get("authorization", "")
        algorithm, _, rest = auth.partition(" ")
        if algorithm != "TC3-HMAC-SHA256":
            return "AuthFailure.InvalidAuthorization", "not TC3-HMAC-SHA256"
        fields = dict(part.strip().split("=", 1) for part in rest.split(","))
        secret_id, date, service, terminator = (fields.get("Credential", "") + "///").split("/")[:4]
        secret_key = self.keys.get(secret_id)
        if secret_key is None:
            return "AuthFailure.SecretIdNotFound", "unknown SecretId"
        timestamp = request.headers.get("x-tc-timestamp", "")
        utc_day = datetime.fromtimestamp(int(timestamp or 0), UTC).strftime("%Y-%m-%d")
        if terminator != "tc3_request" or date != utc_day or service != "sms":
            return "AuthFailure.InvalidAuthorization", "bad credential scope"
        signed = fields.get("SignedHeaders", "").split(";")
        if not {"content-type", "host"} <= set(signed):
            return "AuthFailure.InvalidAuthorization", "content-type and host must be signed"
        headers = "".join(f"{n}:{request.headers.get(n, '').strip().lower()}\n" for n in signed)
        canonical = "\n".join(
            [
                request.method,
                request.path or "/",
                request.query if request.method == "GET" else "",
                headers,
                ";".join(signed),
                hashlib.sha256(request.body).hexdigest(),
            ]
        )
        scope = f"{date}/{service}/tc3_request"
        to_sign = "\n".join(
            [algorithm, timestamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        key = f"TC3{secret_key}".encode()
        for part in (date, service, "tc3_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, fields.get("Signature", "")):
            self.refused_signatures += 1
            return "AuthFailure.SignatureFailure", "signature mismatch"
        return None

    def _send(self, payload: dict[str, object]) -> Answer:
        rows = []
        phones = payload.get("PhoneNumberSet")
        params = payload.get("TemplateParamSet") or []
        assert isinstance(phones, list)
        assert isinstance(params, list)
        template = str(payload.get("TemplateId", ""))
        for phone in phones:
            code = self._code(str(phone), payload, template, params)
            row: dict[str, object] = {
                "PhoneNumber": phone,
                "Fee": 1 if code == "Ok" else 0,
                "SessionContext": payload.get("SessionContext", ""),
                "Code": code,
                "Message": "send success" if code == "Ok" else code,
                "IsoCode": "CN",
                "SerialNo": "",
            }
            if code == "Ok":
                with self._lock:
                    serial = f"3369:{next(self._ids):031d}"
                    sent = Sent(
                        serial,
                        str(phone),
                        str(payload["SignName"]),
                        template,
                        [str(p) for p in params],
                        str(payload.get("SessionContext", "")),
                    )
                    self.sent.append(sent)
                    self._unpulled.append(sent)
                row["SerialNo"] = serial
            rows.append(row)
        return _ok({"SendStatusSet": rows})

    def _code(
        self, phone: str, payload: dict[str, object], template: str, params: list[object]
    ) -> str:
        for suffix, code in self.codes_by_suffix.items():
            if phone.endswith(suffix):
                return code
        if not phone.startswith("+"):
            return "InvalidParameterValue.IncorrectPhoneNumber"
        if payload.get("SignName") not in self.signs:
            return "FailedOperation.SignatureIncorrectOrUnapproved"
        if self.templates.get(template) != len(params):
            return "FailedOperation.TemplateIncorrectOrUnapproved"
        return "Ok"

    def _pull_status(self) -> Answer:
        with self._lock:
            batch, self._unpulled = self._unpulled[:100], self._unpulled[100:]
        rows = [
            {
                "UserReceiveTime": "2026-12-04 08:00:05",
                "CountryCode": "86",
                "SubscriberNumber": s.phone.removeprefix("+86"),
                "PhoneNumber": s.phone,
                "SerialNo": s.serial,
                "ReportStatus": "FAIL" if s.phone in self.undelivered else "SUCCESS",
                "Description": "用户短信送达失败"
                if s.phone in self.undelivered
                else "用户短信送达成功",
                "SessionContext": s.session,
            }
            for s in batch
        ]
        return _ok({"PullSmsSendStatusSet": rows})


def _ok(body: dict[str, object]) -> Answer:
    body["RequestId"] = "a0aabda6-cf91-4f3e-a81f-9198114a2279"
    return 200, JSON, json.dumps({"Response": body}, ensure_ascii=False).encode("utf-8")


def _error(code: str, message: str) -> Answer:
    return _ok({"Error": {"Code": code, "Message": message}})
