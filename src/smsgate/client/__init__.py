"""smsgate's Python SDK: SMSBao-compatible, for smsgate and the real SMSBao service.

Needs only httpx::

    from smsgate.client import Client

    with Client("alice", api_key="...", base_url="http://localhost:8000") as sms:
        sms.send(["13800138000", "13900139000"], "【短信宝】您的验证码是4564")
        print(sms.balance().remaining)

Errors: see :mod:`smsgate.client.exceptions` for the tree.
"""

from smsgate.client._async import AsyncClient
from smsgate.client._core import DEFAULT_BASE_URL, MAX_NUMBERS, Balance, Page, md5_hex
from smsgate.client._sync import Client
from smsgate.client.bulk import Batch, BatchResult, plan_batches
from smsgate.client.exceptions import (
    AccountInactive,
    ApiError,
    BadCredentials,
    BadPhone,
    BadProduct,
    BadSignature,
    ClientError,
    ContentTooLong,
    FrequencyLimit,
    InsufficientBalance,
    IpNotAllowed,
    NoAccount,
    OptedOut,
    ParamsIncomplete,
    QueryTooFrequent,
    SendOutcomeUnknown,
    SensitiveWord,
    TemplateRequired,
    TransportError,
)
from smsgate.client.receiver import (
    Reply,
    ReplyReceiver,
    handle_push,
    handle_push_async,
    parse_push,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "MAX_NUMBERS",
    "AccountInactive",
    "ApiError",
    "AsyncClient",
    "BadCredentials",
    "BadPhone",
    "BadProduct",
    "BadSignature",
    "Balance",
    "Batch",
    "BatchResult",
    "Client",
    "ClientError",
    "ContentTooLong",
    "FrequencyLimit",
    "InsufficientBalance",
    "IpNotAllowed",
    "NoAccount",
    "OptedOut",
    "Page",
    "ParamsIncomplete",
    "QueryTooFrequent",
    "Reply",
    "ReplyReceiver",
    "SendOutcomeUnknown",
    "SensitiveWord",
    "TemplateRequired",
    "TransportError",
    "handle_push",
    "handle_push_async",
    "md5_hex",
    "parse_push",
    "plan_batches",
]
