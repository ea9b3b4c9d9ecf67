"""The ``tencent`` carrier kind: Tencent Cloud SMS (API 3.0, version 2021-01-11), signed by hand.

``SendSms`` per message: ``PhoneNumberSet`` (E.164), ``SmsSdkAppId``, ``SignName`` (the
content's 【signature】), ``TemplateId`` (the code mapped to the approved smsgate template the
content matches) and ``TemplateParamSet`` (the values read out of the content, in placeholder
order). JSON POST to ``https://sms.tencentcloudapi.com/`` signed with TC3-HMAC-SHA256.

Receipts and replies are pulled for the whole application, one request each per round:
``PullSmsSendStatus`` (by ``SerialNo``, the message's reference) and ``PullSmsReplyStatus``.

What an answer means for the message:

- per number ``Ok``: taken, ``SerialNo`` kept.
- ``FailedOperation.InsufficientBalanceInSmsPackage``, ``InternalError*``, HTTP 5xx other than
  504, connection refused: not taken; the carrier cools, failover moves on.
- ``LimitExceeded*``, ``RequestLimitExceeded*``: not taken; queued again later.
- ``AuthFailure*``, ``UnauthorizedOperation*``, ``InvalidParameterValue.SdkAppIdNotExist``...:
  the carrier stops and alerts.
- Any other code (number, signature, template, content): the message fails and is refunded.
- A timeout or lost connection after sending, HTTP 504: ``unknown``. ``SessionContext`` is only
  echoed back, not an idempotency key, so a retry could send twice.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import urlsplit

from smsgate.carriers import signing, upstream
from smsgate.carriers.upstream import (
    HttpLimits,
    MaybeSent,
    NotSent,
    TemplateUpstream,
)
from smsgate.core.messages import DeliveryReport, Outgoing, SubmitResult
from smsgate.core.replies import IncomingReply
from smsgate.core.states import MessageState

log = logging.getLogger(__name__)

SERVICE = "sms"
VERSION = "2021-01-11"
CONTENT_TYPE = "application/json; charset=utf-8"
BEIJING = timezone(timedelta(hours=8))
NO_CREDIT = ("FailedOperation.InsufficientBalanceInSmsPackage", "InternalError")
THROTTLED = ("LimitExceeded", "RequestLimitExceeded")
CONFIG = (
    "AuthFailure",
    "UnauthorizedOperation",
    "InvalidParameterValue.SdkAppIdNotExist",
    "FailedOperation.ForbidAddMarketingTemplates",
    "InvalidAction",
    "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber",
)
PULL_LIMIT = 100


@dataclass(frozen=True)
class TencentConfig:
    secret_id: str = ""
    secret_key: str = ""
    app_id: str = ""  # SmsSdkAppId
    url: str = "https://sms.tencentcloudapi.com"
    region: str = "ap-guangzhou"
    poll_interval: float = 5.0  # PullSmsSendStatus / PullSmsReplyStatus round
    pull_replies: bool = True
    throttle_seconds: float = 60.0
    limits: HttpLimits = field(default_factory=HttpLimits)


class TencentCarrier(TemplateUpstream):
    def __init__(self, config: TencentConfig, name: str = "tencent") -> None:
        super().__init__(name, config.limits)
        self._config = config
        self._url = config.url.rstrip("/") + "/"
        self._host = urlsplit(self._url).netloc

    def _loops(self) -> list[tuple[float, Callable[[], Awaitable[object]]]]:
        loops: list[tuple[float, Callable[[], Awaitable[object]]]] = [
            (self._config.poll_interval, self.pull_receipts)
        ]
        if self._config.pull_replies:
            loops.append((self._config.poll_interval, self.pull_replies))
        return loops

    async def call(
        self, action: str, payload: Mapping[str, object]
    ) -> tuple[int, dict[str, object]]:
        """POST one signed API 3.0 call; (HTTP status, the ``Response`` object)."""
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        timestamp = int(time.time())
        headers = {
            "Authorization": signing.tc3_authorization(
                self._config.secret_id,
                self._config.secret_key,
                SERVICE,
                self._host,
                timestamp,
                body,
                CONTENT_TYPE,
            ),
            "Content-Type": CONTENT_TYPE,
            "Host": self._host,
            "X-TC-Action": action,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Version": VERSION,
            "X-TC-Region": self._config.region,
        }
        response = await self._request("POST", self._url, content=body, headers=headers)
        try:
            decoded = response.json()
        except ValueError:
            decoded = {}
        inner = decoded.get("Response") if isinstance(decoded, dict) else None
        return response.status_code, inner if isinstance(inner, dict) else {}

    async def _submit_one(self, message: Outgoing) -> SubmitResult:
        send = self._template_send(message)
        if isinstance(send, SubmitResult):
            return send
        payload: dict[str, object] = {
            "PhoneNumberSet": [e164(message.phone)],
            "SmsSdkAppId": self._config.app_id,
            "SignName": send.sign_name,
            "TemplateId": send.code,
            "TemplateParamSet": send.ordered_values(),
            "SessionContext": str(message.id),
        }
        if message.ext_code:
            payload["ExtendCode"] = message.ext_code
        answer = await self._exchange(message.id, self.call("SendSms", payload))
        if isinstance(answer, SubmitResult):
            return answer
        status, body = answer
        return self.fate(message.id, status, body)

    def fate(self, message_id: int, status: int, body: Mapping[str, object]) -> SubmitResult:
        """What one ``SendSms`` answer (its ``Response``) means for the message."""
        if status == 504:
            self._state.error("HTTP 504")
            return upstream.maybe_taken(message_id, f"{self.name}: HTTP 504 (gateway timeout)")
        if status >= 500:
            self._state.error(f"HTTP {status}")
            return upstream.not_taken(message_id)
        error = body.get("Error")
        if isinstance(error, dict):
            return self._by_code(message_id, str(error.get("Code", "")), error.get("Message"))
        rows = body.get("SendStatusSet")
        if status != 200 or not isinstance(rows, list) or not rows or not isinstance(rows[0], dict):
            self._state.error(f"HTTP {status}: no SendStatusSet")
            return upstream.maybe_taken(message_id, f"{self.name}: HTTP {status}, no send status")
        row = rows[0]
        code = str(row.get("Code", ""))
        if code == "Ok":
            self._state.submitted += 1
            return upstream.taken(message_id, str(row.get("SerialNo", "")))
        return self._by_code(message_id, code, row.get("Message"))

    def _by_code(self, message_id: int, code: str, message: object) -> SubmitResult:
        what = f"{self.name}: {code} {message or ''}".rstrip()
        if code.startswith(NO_CREDIT):
            self._state.error(what)
            return upstream.not_taken(message_id)
        if code.startswith(THROTTLED):
            self._state.error(what)
            return SubmitResult(message_id, retry_after=self._config.throttle_seconds)
        if code.startswith(CONFIG):
            self._state.stop(self.name, what)
            return upstream.not_taken(message_id)
        return upstream.refused(message_id, what)

    async def pull_receipts(self) -> None:
        status, body = await self._pull("PullSmsSendStatus")
        rows = body.get("PullSmsSendStatusSet") if status == 200 else None
        if not isinstance(rows, list) or not rows:
            return
        reports = []
        for row in rows:
            if not isinstance(row, dict) or not row.get("SerialNo"):
                continue
            ok = row.get("ReportStatus") == "SUCCESS"
            reports.append(
                DeliveryReport(
                    self.name,
                    str(row["SerialNo"]),
                    MessageState.DELIVERED if ok else MessageState.UNDELIVERED,
                    None if ok else f"tencent: {row.get('Description') or row.get('ReportStatus')}",
                    _beijing_time(row.get("UserReceiveTime")),
                )
            )
        self._received()
        await upstream.report(self._sink, reports)

    async def pull_replies(self) -> None:
        status, body = await self._pull("PullSmsReplyStatus")
        rows = body.get("PullSmsReplyStatusSet") if status == 200 else None
        if not isinstance(rows, list) or self._sink is None:
            return
        for row in rows:
            if not isinstance(row, dict) or not row.get("ReplyContent"):
                continue
            phone = str(row.get("SubscriberNumber") or row.get("PhoneNumber") or "")
            dest = str(row.get("ExtendCode") or "") or None
            at = _beijing_time(row.get("ReplyTime"))
            await self._sink.incoming(
                IncomingReply(self.name, phone, dest, str(row["ReplyContent"]), at)
            )

    async def _pull(self, action: str) -> tuple[int, dict[str, object]]:
        try:
            return await self.call(
                action, {"Limit": PULL_LIMIT, "SmsSdkAppId": self._config.app_id}
            )
        except (NotSent, MaybeSent) as exc:
            self._state.error(f"{action}: {exc}")
            return 0, {}


def e164(phone: str) -> str:
    """Mainland numbers are stored as 11 national digits; Tencent wants ``+86...``."""
    return phone if phone.startswith("+") else f"+86{phone}"


def _beijing_time(text: object) -> datetime:
    """``2019-10-08 17:18:37`` (China time, as Tencent prints it) as aware UTC; now if absent."""
    try:
        local = datetime.strptime(str(text), "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    except ValueError:
        return datetime.now(UTC)
    return local.astimezone(UTC)


def build(name: str, options: Mapping[str, object]) -> TencentCarrier:
    default = TencentConfig()
    config = TencentConfig(
        secret_id=upstream.text(options, "access_key"),
        secret_key=upstream.text(options, "secret"),
        app_id=upstream.text(options, "app_id"),
        url=upstream.text(options, "url", default.url),
        region=upstream.text(options, "region", default.region),
        poll_interval=upstream.number(options, "poll_interval", default.poll_interval),
        pull_replies=bool(options.get("pull_replies", default.pull_replies)),
        limits=upstream.limits_from(options),
    )
    return TencentCarrier(config, name)
