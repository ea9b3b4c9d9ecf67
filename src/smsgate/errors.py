"""Every error smsgate can answer, in one table.

The SMSBao wire answers with a bare code (``30``), the JSON API with
``{"code", "message", "detail"}``; both are rendered from the same
:class:`ErrorCode` rows below, so a code never means two things.

Exception tree::

    SmsgateError
    ├── Rejected        a request refused with a wire code (carries an ErrorCode)
    ├── AdminError      an operator command that cannot be carried out
    │   ├── NotFound
    │   ├── Conflict
    │   ├── InvalidInput
    │   └── SchemaMismatch  the database's schema is not this version's (migrate or upgrade)
    ├── TargetRefused   a reply push whose URL reaches an internal address (SSRF guard)
    └── Unavailable     a service smsgate needs (the database, Redis) does not answer

This module imports nothing of ours: the SDK (``smsgate.client``) uses it
without the server's dependencies.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """One row of the code table."""

    wire: str  # the SMSBao body, e.g. "30"
    slug: str  # the JSON API's "code", e.g. "bad_credentials"
    http_status: int  # the JSON API's HTTP status (the SMSBao wire is always 200)
    message: str  # English
    message_zh: str  # Chinese, as SMSBao words it where it has a word for it


OK = ErrorCode("0", "ok", 200, "Accepted", "成功")
PARAMS_INCOMPLETE = ErrorCode(
    "-1",
    "params_incomplete",
    400,
    "Parameters incomplete: u, p, m or c missing or empty",
    "参数不全",
)
BAD_CREDENTIALS = ErrorCode("30", "bad_credentials", 401, "Wrong password or ApiKey", "错误密码")
NO_ACCOUNT = ErrorCode("40", "no_account", 401, "Account does not exist", "账号不存在")
INSUFFICIENT_BALANCE = ErrorCode(
    "41", "insufficient_balance", 402, "Insufficient balance", "余额不足"
)
ACCOUNT_INACTIVE = ErrorCode(
    "42", "account_inactive", 403, "Account expired or disabled", "帐户被禁用或已过期"
)
IP_NOT_ALLOWED = ErrorCode(
    "43", "ip_not_allowed", 403, "Request IP not in the account's allowlist", "IP地址限制"
)
QUERY_TOO_FREQUENT = ErrorCode(
    "44", "query_too_frequent", 429, "Balance queried more than once per minute", "查询过于频繁"
)
SENSITIVE_WORD = ErrorCode(
    "50", "sensitive_word", 422, "Content contains a sensitive word", "内容含有敏感词"
)
BAD_PHONE = ErrorCode(
    "51", "bad_phone", 422, "A phone number is invalid, or more than 99 numbers", "手机号码不正确"
)
BAD_SIGNATURE = ErrorCode(
    "52",
    "bad_signature",
    422,
    "Signature 【…】 missing, malformed (3-10 characters) or not registered",
    "签名不合法或未报备",
)
FREQUENCY_LIMIT = ErrorCode(
    "53",
    "frequency_limit",
    429,
    "Frequency limit: same content to the same number again, or a per-number cap hit",
    "发送频率超限",
)
TEMPLATE_REQUIRED = ErrorCode(
    "54",
    "template_required",
    422,
    "This product requires an approved template and the content matches none",
    "内容与报备模板不符",
)
BAD_PRODUCT = ErrorCode(
    "55",
    "bad_product",
    422,
    "Unknown product, or a product the account may not use",
    "产品不存在或无权使用",
)
CONTENT_TOO_LONG = ErrorCode(
    "56", "content_too_long", 422, "Content too long (over 500 characters)", "内容过长"
)
OPTED_OUT = ErrorCode("57", "opted_out", 422, "Number on the account's opt-out list", "号码已退订")

WIRE_CODES: tuple[ErrorCode, ...] = (
    OK,
    PARAMS_INCOMPLETE,
    BAD_CREDENTIALS,
    NO_ACCOUNT,
    INSUFFICIENT_BALANCE,
    ACCOUNT_INACTIVE,
    IP_NOT_ALLOWED,
    QUERY_TOO_FREQUENT,
    SENSITIVE_WORD,
    BAD_PHONE,
    BAD_SIGNATURE,
    FREQUENCY_LIMIT,
    TEMPLATE_REQUIRED,
    BAD_PRODUCT,
    CONTENT_TOO_LONG,
    OPTED_OUT,
)
BY_WIRE: dict[str, ErrorCode] = {c.wire: c for c in WIRE_CODES}


class SmsgateError(Exception):
    """Base of every error smsgate raises on purpose."""


class Rejected(SmsgateError):
    """A request refused with a wire code; ``detail`` says which part was wrong."""

    def __init__(self, code: ErrorCode, detail: str = "") -> None:
        super().__init__(f"{code.wire} {code.message}" + (f": {detail}" if detail else ""))
        self.code = code
        self.detail = detail


class AdminError(SmsgateError):
    """An operator command that cannot be carried out; the message says what to do."""

    http_status = 400


class Unauthorized(AdminError):
    """Credentials missing or wrong where an operator's are needed (HTTP Basic)."""

    http_status = 401


class NotFound(AdminError):
    http_status = 404


class Conflict(AdminError):
    http_status = 409


class InvalidInput(AdminError):
    http_status = 422


class SchemaMismatch(AdminError):
    """The database schema is older or newer than this version of smsgate expects."""

    http_status = 503


class TargetRefused(SmsgateError):
    """A reply push not made: its URL's host is, or resolves to, an internal address."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"refused: {reason}")
        self.reason = reason


class Unavailable(SmsgateError):
    """A service smsgate needs (``service``: "database" or "redis") did not answer, so the
    request was not carried out: an outage to report and retry, not a bug. HTTP answers 503
    with ``Retry-After``."""

    http_status = 503

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"{service} unavailable: {reason}")
        self.service = service
        self.reason = reason
