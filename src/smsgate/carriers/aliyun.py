"""The ``aliyun`` carrier kind: Alibaba Cloud SMS (Dysmsapi 2017-05-25), signed by hand.

``SendSms`` per message: ``PhoneNumbers``, ``SignName`` (the content's 【signature】),
``TemplateCode`` (the provider's code mapped to the approved smsgate template the content
matches) and ``TemplateParam`` (the values read out of the content, as JSON). The request is
an RPC-style POST, form-encoded, signed with signature method V2 (HMAC-SHA1), the method whose
worked example Alibaba Cloud publishes (docs/decisions.md says why not the SDK).

Receipts: ``QuerySendDetails`` (phone, ``BizId``, send date) is polled for each message
still waiting, until it reports ``SendStatus`` 3 (delivered) or 2 (failed); the reference is
``<BizId>:<message id>``, unique even if one ``BizId`` covered several numbers.

What an answer means for the message:

- ``OK``: taken, ``BizId`` kept.
- ``isv.AMOUNT_NOT_ENOUGH``, ``isv.OUT_OF_SERVICE`` (out of credit), HTTP 5xx other than 504,
  connection refused: not taken; the carrier cools, failover moves on.
- ``isv.BUSINESS_LIMIT_CONTROL``, ``Throttling*``: not taken; queued again later.
- Credentials and account errors (``InvalidAccessKeyId.*``, ``SignatureDoesNotMatch``,
  ``Forbidden*``, ``isv.ACCOUNT_*``, ``isv.DENY_IP_RANGE``...): the carrier stops and alerts.
- Any other error code (number, signature, template, parameters): the message fails and is
  refunded.
- A timeout or lost connection after sending, HTTP 504: ``unknown``. ``OutId`` is only echoed
  back, not an idempotency key, so a retry could send twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

from smsgate.carriers import signing, upstream
from smsgate.carriers.upstream import (
    HttpLimits,
    MaybeSent,
    NotSent,
    TemplateUpstream,
)
from smsgate.core.messages import DeliveryReport, Outgoing, SubmitResult
from smsgate.core.states import MessageState

log = logging.getLogger(__name__)

VERSION = "2017-05-25"
BEIJING = timezone(timedelta(hours=8))  # SendDate is the provider's (China) calendar day
NO_CREDIT = frozenset({"isv.AMOUNT_NOT_ENOUGH", "isv.OUT_OF_SERVICE"})
THROTTLED = ("isv.BUSINESS_LIMIT_CONTROL", "Throttling")
CONFIG = (
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "Forbidden",
    "isv.ACCOUNT_",
    "isv.DENY_IP_RANGE",
    "isv.PRODUCT_UN_SUBSCRIPT",
    "isv.PRODUCT_UNSUBSCRIBE",
    "InvalidVersion",
    "InvalidTimeStamp",
    "SignatureNonceUsed",
)
SEND_WAITING, SEND_FAILED, SEND_DELIVERED = 1, 2, 3
POLL_BATCH = 200  # messages asked about per round at most (oldest first)


@dataclass(frozen=True)
class AliyunConfig:
    access_key: str = ""
    secret: str = ""
    url: str = "https://dysmsapi.aliyuncs.com"
    region: str = "cn-hangzhou"
    poll_interval: float = 10.0  # QuerySendDetails round for waiting messages
    give_up_after: float = 72 * 3600.0  # stop asking about a message after this long
    throttle_seconds: float = 60.0
    limits: HttpLimits = field(default_factory=HttpLimits)


@dataclass(slots=True)
class _Waiting:
    ref: str
    biz_id: str
    phone: str
    send_date: str  # yyyyMMdd
    since: datetime


class AliyunCarrier(TemplateUpstream):
    def __init__(self, config: AliyunConfig, name: str = "aliyun") -> None:
        super().__init__(name, config.limits)
        self._config = config
        self._url = config.url.rstrip("/") + "/"
        self._waiting: dict[str, _Waiting] = {}

    def _loops(self) -> list[tuple[float, Callable[[], Awaitable[object]]]]:
        return [(self._config.poll_interval, self.poll_receipts)]

    def status(self) -> dict[str, object]:
        self._state.extra["awaiting_receipt"] = len(self._waiting)
        return super().status()

    async def call(self, action: str, params: Mapping[str, str]) -> tuple[int, dict[str, object]]:
        """POST one signed RPC call; (HTTP status, decoded JSON body)."""
        signed = {
            "AccessKeyId": self._config.access_key,
            "Action": action,
            "Format": "JSON",
            "RegionId": self._config.region,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": VERSION,
            **params,
        }
        signed["Signature"] = signing.aliyun_signature("POST", signed, self._config.secret)
        response = await self._request("POST", self._url, data=signed)
        try:
            body = response.json()
        except ValueError:
            body = {}
        return response.status_code, body if isinstance(body, dict) else {}

    async def _submit_one(self, message: Outgoing) -> SubmitResult:
        send = self._template_send(message)
        if isinstance(send, SubmitResult):
            return send
        phone = message.phone.removeprefix("+")
        params = {
            "PhoneNumbers": phone,
            "SignName": send.sign_name,
            "TemplateCode": send.code,
            "TemplateParam": json.dumps(dict(send.values), ensure_ascii=False),
            "OutId": str(message.id),
        }
        if message.ext_code:
            params["SmsUpExtendCode"] = message.ext_code
        answer = await self._exchange(message.id, self.call("SendSms", params))
        if isinstance(answer, SubmitResult):
            return answer
        status, body = answer
        result = self.fate(message.id, status, body)
        if result.carrier_ref is not None:
            biz_id = result.carrier_ref.split(":", 1)[0]
            now = datetime.now(UTC)
            self._waiting[result.carrier_ref] = _Waiting(
                result.carrier_ref, biz_id, phone, now.astimezone(BEIJING).strftime("%Y%m%d"), now
            )
        return result

    def fate(self, message_id: int, status: int, body: Mapping[str, object]) -> SubmitResult:
        """What one ``SendSms`` answer means for the message (the module's list)."""
        code = str(body.get("Code", ""))
        what = f"{self.name}: {code} {body.get('Message', '')}".rstrip()
        if status == 200 and code == "OK":
            self._state.submitted += 1
            return upstream.taken(message_id, f"{body.get('BizId', '')}:{message_id}")
        if status == 504:
            self._state.error("HTTP 504")
            return upstream.maybe_taken(message_id, f"{self.name}: HTTP 504 (gateway timeout)")
        if status >= 500 or code.startswith("isp.") or code in NO_CREDIT:
            self._state.error(what if code else f"HTTP {status}")
            return upstream.not_taken(message_id)
        if code.startswith(THROTTLED):
            self._state.error(what)
            return SubmitResult(message_id, retry_after=self._config.throttle_seconds)
        if code.startswith(CONFIG):
            self._state.stop(self.name, what)
            return upstream.not_taken(message_id)
        if not code:
            self._state.error(f"HTTP {status} without a code")
            return upstream.maybe_taken(message_id, f"{self.name}: HTTP {status} without a code")
        return upstream.refused(message_id, what)

    async def poll_receipts(self) -> None:
        """QuerySendDetails for the waiting messages (up to POLL_BATCH a round, in parallel
        within the concurrency limit); reports for those that ended."""
        now = datetime.now(UTC)
        asking: list[_Waiting] = []
        for waiting in list(self._waiting.values()):
            if (now - waiting.since).total_seconds() > self._config.give_up_after:
                self._waiting.pop(waiting.ref, None)  # the report timeout settles it
            elif len(asking) < POLL_BATCH:
                asking.append(waiting)
        answers = await asyncio.gather(*(self._details(w) for w in asking))
        reports = []
        for waiting, ended in zip(asking, answers, strict=True):
            if ended is not None:
                self._waiting.pop(waiting.ref, None)
                reports.append(DeliveryReport(self.name, waiting.ref, *ended, now))
        if reports:
            self._received()
            await upstream.report(self._sink, reports)

    async def _details(self, waiting: _Waiting) -> tuple[MessageState, str | None] | None:
        try:
            status, body = await self.call(
                "QuerySendDetails",
                {
                    "PhoneNumber": waiting.phone,
                    "BizId": waiting.biz_id,
                    "SendDate": waiting.send_date,
                    "PageSize": "10",
                    "CurrentPage": "1",
                },
            )
        except (NotSent, MaybeSent) as exc:
            self._state.error(f"receipts: {exc}")
            return None  # asked again next round
        return _ended(body) if status == 200 else None


def _ended(body: Mapping[str, object]) -> tuple[MessageState, str | None] | None:
    """The final state in a QuerySendDetails answer, or None while still waiting."""
    if body.get("Code") != "OK":
        return None
    dtos = body.get("SmsSendDetailDTOs")
    rows = dtos.get("SmsSendDetailDTO") if isinstance(dtos, dict) else None
    if not isinstance(rows, list) or not rows or not isinstance(rows[0], dict):
        return None
    row = rows[0]
    send_status = int(row.get("SendStatus", SEND_WAITING))
    if send_status == SEND_DELIVERED:
        return MessageState.DELIVERED, None
    if send_status == SEND_FAILED:
        return MessageState.UNDELIVERED, f"aliyun: {row.get('ErrCode', 'failed')}"
    return None


def build(name: str, options: Mapping[str, object]) -> AliyunCarrier:
    default = AliyunConfig()
    config = AliyunConfig(
        access_key=upstream.text(options, "access_key"),
        secret=upstream.text(options, "secret"),
        url=upstream.text(options, "url", default.url),
        region=upstream.text(options, "region", default.region),
        poll_interval=upstream.number(options, "poll_interval", default.poll_interval),
        limits=upstream.limits_from(options),
    )
    return AliyunCarrier(config, name)
