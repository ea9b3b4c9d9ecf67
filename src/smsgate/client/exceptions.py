"""What the SDK raises.

Exception tree::

    ClientError                   anything smsgate.client raises on purpose
    ├── ApiError                  the server answered with an error (.code, .message, .message_zh)
    │   ├── ParamsIncomplete      -1  u, p, m or c missing or empty
    │   ├── BadCredentials        30  wrong password or ApiKey
    │   ├── NoAccount             40  account does not exist
    │   ├── InsufficientBalance   41  nothing was sent, nothing charged
    │   ├── AccountInactive       42  account expired or disabled
    │   ├── IpNotAllowed          43  caller's IP not in the allowlist
    │   ├── QueryTooFrequent      44  balance queried more than once a minute
    │   ├── SensitiveWord         50
    │   ├── BadPhone              51  a number is invalid, or more than 99 numbers
    │   ├── BadSignature          52  signature 【…】 missing, malformed or not registered
    │   ├── FrequencyLimit        53
    │   ├── TemplateRequired      54
    │   ├── BadProduct            55
    │   ├── ContentTooLong        56
    │   └── OptedOut              57  number replied TD / 退订
    └── TransportError            no usable answer: connection refused, timeout, broken exchange
        └── SendOutcomeUnknown    a send broke after it left: it may have been accepted

The wire codes, slugs and messages come from :mod:`smsgate.errors`, the one code table; each
``ApiError`` subclass names its row in ``error_code``. An answer that matches no row raises
plain ``ApiError`` with the raw body in ``.body``.
"""

from __future__ import annotations

from typing import ClassVar

from smsgate import errors
from smsgate.errors import ErrorCode


class ClientError(Exception):
    """Base of every error the SDK raises on purpose."""


class ApiError(ClientError):
    """The server answered, and the answer is an error.

    ``code`` is the SMSBao wire code (``"30"``) or, for an answer outside the table, the
    JSON API's code or the short raw body; ``body`` is the raw answer; ``status_code`` the
    HTTP status (always 200 on the SMSBao wire); ``detail`` the JSON API's detail, if any.
    """

    error_code: ClassVar[ErrorCode | None] = None

    def __init__(
        self,
        code: str,
        message: str,
        message_zh: str = "",
        *,
        detail: str = "",
        body: str = "",
        status_code: int = 200,
    ) -> None:
        self.code = code
        self.message = message
        self.message_zh = message_zh
        self.detail = detail
        self.body = body
        self.status_code = status_code
        super().__init__(self._text())

    def _text(self) -> str:
        text = f"{self.code}: {self.message}" if self.code else self.message
        if self.message_zh:
            text += f" ({self.message_zh})"
        return text + (f": {self.detail}" if self.detail else "")


class ParamsIncomplete(ApiError):
    error_code = errors.PARAMS_INCOMPLETE


class BadCredentials(ApiError):
    error_code = errors.BAD_CREDENTIALS


class NoAccount(ApiError):
    error_code = errors.NO_ACCOUNT


class InsufficientBalance(ApiError):
    error_code = errors.INSUFFICIENT_BALANCE


class AccountInactive(ApiError):
    error_code = errors.ACCOUNT_INACTIVE


class IpNotAllowed(ApiError):
    error_code = errors.IP_NOT_ALLOWED


class QueryTooFrequent(ApiError):
    error_code = errors.QUERY_TOO_FREQUENT


class SensitiveWord(ApiError):
    error_code = errors.SENSITIVE_WORD


class BadPhone(ApiError):
    error_code = errors.BAD_PHONE


class BadSignature(ApiError):
    error_code = errors.BAD_SIGNATURE


class FrequencyLimit(ApiError):
    error_code = errors.FREQUENCY_LIMIT


class TemplateRequired(ApiError):
    error_code = errors.TEMPLATE_REQUIRED


class BadProduct(ApiError):
    error_code = errors.BAD_PRODUCT


class ContentTooLong(ApiError):
    error_code = errors.CONTENT_TOO_LONG


class OptedOut(ApiError):
    error_code = errors.OPTED_OUT


class TransportError(ClientError):
    """No usable answer: the server could not be reached, or the exchange broke.

    The httpx exception is the ``__cause__``.
    """


class SendOutcomeUnknown(TransportError):
    """A send broke after the request left (timeout, dropped connection, gateway error).

    The server may have accepted it: the SDK never sends it again by itself. Check the
    message log (console or :meth:`Client.messages`) before sending to ``phones`` again.
    """

    def __init__(self, text: str, phones: tuple[str, ...]) -> None:
        super().__init__(text)
        self.phones = phones


def _classes() -> dict[str, type[ApiError]]:
    table: dict[str, type[ApiError]] = {}
    for cls in ApiError.__subclasses__():
        assert cls.error_code is not None
        table[cls.error_code.wire] = cls
    return table


#: wire code -> exception class, for every row of errors.WIRE_CODES but "0".
BY_WIRE: dict[str, type[ApiError]] = _classes()


def from_error_code(
    row: ErrorCode, *, detail: str = "", body: str = "", status_code: int = 200
) -> ApiError:
    """The exception for one row of the code table."""
    cls = BY_WIRE.get(row.wire, ApiError)
    return cls(
        row.wire, row.message, row.message_zh, detail=detail, body=body, status_code=status_code
    )
