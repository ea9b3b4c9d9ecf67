"""Logs without secrets or personal data, as text in a terminal and JSON elsewhere.

- ``p`` (a password equivalent) is always masked; phone numbers and content (``m``,
  ``c``, ``phone``, ``content``: verification codes) too unless the operator turns on
  ``log_personal_data`` for development;
- request targets are cut at ``MAX_LOGGED_TARGET`` characters;
- tracebacks name exception types and frames, never messages (a database error quotes
  the row it could not store);
- each request gets an id, in every line logged while it is served.

The access log is ours (`RequestLog`, written by api/guard.py), the same on granian and
uvicorn; the servers' own access logs stay off.
"""

from __future__ import annotations

import contextvars
import itertools
import json
import logging
import os
import re
import sys
import traceback
from typing import Literal
from urllib.parse import unquote_plus

from starlette.types import Scope

_PARAM = re.compile(r"([?&])([^=&\s\"]*)=([^&\s\"]*)")
SECRET_NAMES = frozenset({"p"})
PERSONAL_NAMES = frozenset({"m", "c", "phone", "content", "mobile"})
MAX_LOGGED_TARGET = 512

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

LogFormat = Literal["auto", "json", "text"]


_PROCESS_PREFIX = os.urandom(3).hex()  # ids of different processes never meet
_REQUEST_NUMBERS = itertools.count(1)


def new_request_id() -> str:
    """A fresh id for the request being served, seen by every log line it causes: 12 hex
    digits, a per-process prefix and a counter (cheaper than random bytes per request)."""
    request_id = f"{_PROCESS_PREFIX}{next(_REQUEST_NUMBERS) & 0xFFFFFF:06x}"
    REQUEST_ID.set(request_id)
    return request_id


def redact(text: str, *, personal: bool = False) -> str:
    """Mask the value of every secret parameter (`%70` is `p` too); with ``personal``
    False also phone numbers and content."""
    hidden = SECRET_NAMES if personal else SECRET_NAMES | PERSONAL_NAMES

    def mask(match: re.Match[str]) -> str:
        if unquote_plus(match.group(2)).strip() in hidden:
            return f"{match.group(1)}{match.group(2)}=***"
        return match.group(0)

    return _PARAM.sub(mask, text)


def shorten(text: str, limit: int = MAX_LOGGED_TARGET) -> str:
    return text if len(text) <= limit else f"{text[:limit]}...[{len(text)} chars]"


def safe_traceback(exc: BaseException) -> str:
    """The frames and exception types of ``exc`` and its causes, without any message."""
    lines: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = traceback.extract_tb(current.__traceback__)
        lines.extend(f"  {f.filename}:{f.lineno} in {f.name}" for f in frames)
        lines.append(f"{type(current).__module__}.{type(current).__qualname__}")
        current = current.__cause__ or current.__context__
    return "\n".join(lines)


class RequestLog:
    """One line per request: client, method, target (masked, shortened), status, time."""

    def __init__(self, *, personal: bool = False) -> None:
        self._personal = personal
        self._log = logging.getLogger("smsgate.access")

    def write(self, scope: Scope, status: int | None, seconds: float) -> None:
        target = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        if query:
            target += b"?" + query
        shown = shorten(redact(target.decode("latin-1"), personal=self._personal))
        client = scope.get("client")
        self._log.info(
            '%s - "%s %s" %s %.1fms',
            client[0] if client else "-",
            scope["method"],
            shown,
            status if status is not None else "-",
            seconds * 1000,
        )


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info and record.exc_info[1] is not None:
            entry["traceback"] = safe_traceback(record.exc_info[1])
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(levelname)-8s %(name)s [%(request_id)s] %(message)s")

    def formatException(self, ei: object) -> str:
        exc = ei[1] if isinstance(ei, tuple) else None
        return safe_traceback(exc) if isinstance(exc, BaseException) else ""


# Loggers the HTTP servers configure with handlers of their own: routed to ours instead.
SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "granian", "_granian")
# The servers' access logs: ours replaces them (RequestLog).
SERVER_ACCESS_LOGGERS = ("uvicorn.access", "granian.access", "_granian.access")


def install(log_format: LogFormat = "auto") -> None:
    """Route every log line of this process through one handler in the chosen format."""
    as_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if as_json else TextFormatter())
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            logger.removeHandler(old)
        logger.propagate = True
    for name in SERVER_ACCESS_LOGGERS:
        logging.getLogger(name).disabled = True
