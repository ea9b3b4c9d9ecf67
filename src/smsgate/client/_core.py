"""Everything the sync and async clients share: building requests, reading answers, and
deciding whether a failed exchange may be tried again. No I/O happens here."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from smsgate import errors
from smsgate.client.exceptions import (
    ApiError,
    SendOutcomeUnknown,
    TransportError,
    from_error_code,
)

T = TypeVar("T")
JSON = dict[str, Any]

DEFAULT_BASE_URL = "https://api.smsbao.com"
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
MAX_NUMBERS = 99
USER_AGENT = "smsgate-python"

# Failures that happen before a single byte of the request reached the server.
NOT_SENT: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
)
_VOICE_CODE = re.compile(r"\d{4,8}")
_PHONE_SEPARATORS = re.compile(r"[,，]")
_ROWS_BY_SLUG = {row.slug: row for row in errors.WIRE_CODES if row is not errors.OK}
_FILTERS = ("account", "phone", "text", "state", "batch", "since", "until", "limit", "cursor")


def md5_hex(password: str) -> str:
    """The SMSBao ``p`` for a login password: lowercase MD5 hex of its UTF-8 bytes."""
    return hashlib.md5(password.encode()).hexdigest()


def split_phones(phones: str | Iterable[str]) -> list[str]:
    """Numbers from ``"a,b"`` or ``["a", "b"]``, stripped, empty ones dropped."""
    items = _PHONE_SEPARATORS.split(phones) if isinstance(phones, str) else phones
    return [phone.strip() for phone in items if phone.strip()]


def encode_query(params: Mapping[str, str]) -> str:
    """UTF-8 percent-encoding of every byte outside ``A-Za-z0-9_.-~`` (space is ``%20``)."""
    return "&".join(f"{key}={quote(value, safe='')}" for key, value in params.items())


@dataclass(frozen=True, slots=True)
class Balance:
    """The ``/query`` answer, in billing units (条)."""

    sent: int
    remaining: int


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request and how to read its answer.

    ``idempotent`` calls are tried again after any transport error; the others only after
    an error that happened before the request was sent. A failed ``is_send`` call whose
    request may have arrived raises :class:`SendOutcomeUnknown`.
    """

    request: httpx.Request
    parse: Callable[[httpx.Response], T]
    idempotent: bool = False
    is_send: bool = False
    phones: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``retries`` more attempts after the first, waiting ``backoff * 2**attempt`` seconds."""

    retries: int = 2
    backoff: float = 0.25

    def after(self, call: Call[Any], exc: httpx.TransportError, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1``; raises when there is none."""
        if attempt < self.retries and (call.idempotent or isinstance(exc, NOT_SENT)):
            return self.backoff * 2.0**attempt
        raise failure(call, exc) from exc


def failure(call: Call[Any], exc: httpx.TransportError) -> TransportError:
    """The SDK exception for a transport error that will not be retried."""
    where = f"{call.request.method} {call.request.url.path}"
    reason = f"{type(exc).__name__}: {exc}".rstrip(": ")
    if call.is_send and not isinstance(exc, NOT_SENT):
        return SendOutcomeUnknown(
            f"{where} broke after the request was sent ({reason}); it may have been accepted: "
            "check before sending again",
            call.phones,
        )
    return TransportError(f"{where} failed: {reason}")


# ---- reading answers -------------------------------------------------------------------


def unexpected(response: httpx.Response) -> ApiError:
    """An answer that is not in the code table: the raw body rides along."""
    body = response.text
    short = body.strip()
    code = short if len(short) <= 16 and not re.search(r"\s", short) else ""
    excerpt = short[:200] or "(empty body)"
    return ApiError(
        code,
        f"Unexpected answer (HTTP {response.status_code}): {excerpt}",
        body=body,
        status_code=response.status_code,
    )


def wire_error(response: httpx.Response, code: str) -> ApiError:
    """The exception for a non-``0`` SMSBao answer."""
    row = errors.BY_WIRE.get(code)
    if row is None or row is errors.OK:
        return unexpected(response)
    return from_error_code(row, body=response.text, status_code=response.status_code)


def parse_send(response: httpx.Response, phones: tuple[str, ...] = ()) -> None:
    """``0`` is accepted; a table code raises its class; a gateway error leaves it unknown."""
    code = response.text.strip()
    if code == "0":
        return
    if code not in errors.BY_WIRE and response.status_code >= 500:
        raise SendOutcomeUnknown(
            f"HTTP {response.status_code} from {response.url.path}: the send may have been "
            "accepted upstream; check before sending again",
            phones,
        )
    raise wire_error(response, code)


def parse_balance(response: httpx.Response) -> Balance:
    """``0\\n<sent>,<remaining>``; anything else raises."""
    first, _, rest = response.text.strip().partition("\n")
    if first.strip() != "0":
        raise wire_error(response, first.strip())
    match = re.fullmatch(r"\s*(-?\d+)\s*,\s*(-?\d+)\s*", rest)
    if match is None:
        raise unexpected(response)
    return Balance(int(match[1]), int(match[2]))


def parse_json(response: httpx.Response) -> Any:
    """The decoded body of a 2xx JSON answer; an error answer raises."""
    if response.status_code >= 400:
        raise json_error(response)
    try:
        return response.json()
    except ValueError:
        raise unexpected(response) from None


def json_error(response: httpx.Response) -> ApiError:
    """``{"code", "message", "detail"}`` to its class, matched on the slug."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("code"), str):
        return unexpected(response)
    slug, detail, body = data["code"], _detail_text(data.get("detail")), response.text
    row = _ROWS_BY_SLUG.get(slug)
    if row is None:
        message = str(data.get("message", ""))
        return ApiError(slug, message, detail=detail, body=body, status_code=response.status_code)
    return from_error_code(row, detail=detail, body=body, status_code=response.status_code)


def _detail_text(detail: object) -> str:
    if detail is None:
        return ""
    return detail if isinstance(detail, str) else json.dumps(detail, ensure_ascii=False)


class Page(list[JSON]):
    """The items of one page of a JSON list; pass ``next_cursor`` as ``cursor=`` for the next
    (older) page. ``None`` on the last page."""

    next_cursor: str | None = None


def parse_items(response: httpx.Response) -> Page:
    """A JSON list answer, bare or as ``{"items": [...], "next_cursor": ...}``."""
    data = parse_json(response)
    items = data.get("items") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise unexpected(response)
    page = Page(items)
    cursor = data.get("next_cursor") if isinstance(data, dict) else None
    page.next_cursor = None if cursor is None else str(cursor)
    return page


def parse_object(response: httpx.Response) -> JSON:
    data = parse_json(response)
    if not isinstance(data, dict):
        raise unexpected(response)
    return data


# ---- building requests -----------------------------------------------------------------


def filter_params(filters: Mapping[str, object]) -> dict[str, str]:
    """Query parameters for the JSON list endpoints; unknown names are a programming error."""
    unknown = sorted(set(filters) - set(_FILTERS))
    if unknown:
        raise TypeError(f"unknown filter(s) {', '.join(unknown)}; known: {', '.join(_FILTERS)}")
    return {key: _param(value) for key, value in filters.items() if value is not None}


def _param(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


class ClientCore:
    """Credentials, base URL and timeouts; turns each SDK method into a :class:`Call`."""

    def __init__(
        self,
        username: str,
        *,
        password: str | None,
        api_key: str | None,
        base_url: str,
        timeout: httpx.Timeout,
        retry: RetryPolicy,
    ) -> None:
        if (password is None) == (api_key is None):
            raise ValueError("give exactly one of password= or api_key=")
        if not username:
            raise ValueError("username is empty")
        self.username = username
        self._secret = md5_hex(password) if password is not None else str(api_key)
        self._api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retry = retry

    def __repr__(self) -> str:
        return f"ClientCore(username={self.username!r}, base_url={self.base_url!r})"

    def _request(
        self, path: str, query: str, headers: Mapping[str, str] | None = None
    ) -> httpx.Request:
        url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        return httpx.Request(
            "GET",
            url,
            headers={"User-Agent": USER_AGENT, **(headers or {})},
            extensions={"timeout": self.timeout.as_dict()},
        )

    def _wire(self, path: str, params: Mapping[str, str]) -> httpx.Request:
        return self._request(path, encode_query({"u": self.username, "p": self._secret, **params}))

    def _send(self, path: str, phones: list[str], params: dict[str, str]) -> Call[None]:
        numbers = tuple(phones)
        request = self._wire(path, {"m": ",".join(numbers), **params})
        return Call(request, lambda r: parse_send(r, numbers), is_send=True, phones=numbers)

    def send(
        self, phones: str | Iterable[str], content: str, product: str | int | None = None
    ) -> Call[None]:
        params = {} if product is None else {"g": str(product)}
        return self._send("/sms", checked_phones(phones), {**params, "c": content})

    def send_international(self, phones: str | Iterable[str], content: str) -> Call[None]:
        return self._send("/wsms", checked_phones(phones), {"c": content})

    def send_voice_code(self, phone: str, code: str | int) -> Call[None]:
        numbers = split_phones(phone)
        if len(numbers) != 1:
            raise ValueError(f"a voice code goes to exactly one number, not {phone!r}")
        if not _VOICE_CODE.fullmatch(str(code)):
            raise ValueError(f"a voice code is 4 to 8 digits, not {code!r}")
        return self._send("/voice", numbers, {"c": str(code)})

    def balance(self) -> Call[Balance]:
        return Call(self._wire("/query", {}), parse_balance)

    def _json(
        self, path: str, params: Mapping[str, str], parse: Callable[[httpx.Response], T]
    ) -> Call[T]:
        if self._api_key is None:
            raise ValueError("the JSON API needs an ApiKey: create the client with api_key=")
        headers = {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"}
        return Call(self._request(path, encode_query(params), headers), parse, idempotent=True)

    def messages(self, filters: Mapping[str, object]) -> Call[Page]:
        return self._json("/v1/messages", filter_params(filters), parse_items)

    def message(self, message_id: str | int) -> Call[JSON]:
        return self._json(f"/v1/messages/{quote(str(message_id), safe='')}", {}, parse_object)

    def replies(self, filters: Mapping[str, object]) -> Call[Page]:
        return self._json("/v1/replies", filter_params(filters), parse_items)


def checked_phones(phones: str | Iterable[str]) -> list[str]:
    """The numbers of one send request: at least one, at most 99 distinct."""
    numbers = split_phones(phones)
    if not numbers:
        raise ValueError("no phone number given")
    distinct = len(set(numbers))
    if distinct > MAX_NUMBERS:
        raise ValueError(
            f"{distinct} numbers: one request takes at most {MAX_NUMBERS}; "
            "use send_bulk (on the command line: send --file)"
        )
    return numbers
