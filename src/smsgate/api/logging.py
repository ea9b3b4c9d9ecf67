"""Access logs without secrets: the `p` parameter (a password equivalent) is masked."""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

_PARAM = re.compile(r"([?&])([^=&\s\"]*)=([^&\s\"]*)")
SECRET_NAMES = frozenset({"p"})


def redact(text: str) -> str:
    """Mask the value of every parameter whose name decodes to a secret one (`%70` is `p`)."""

    def mask(match: re.Match[str]) -> str:
        if unquote_plus(match.group(2)).strip() in SECRET_NAMES:
            return f"{match.group(1)}{match.group(2)}=***"
        return match.group(0)

    return _PARAM.sub(mask, text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())  # whatever the server put in its args
        record.args = None
        return True


ACCESS_LOGGERS = ("uvicorn.access", "granian.access")


def install() -> None:
    for name in ACCESS_LOGGERS:
        logging.getLogger(name).addFilter(RedactSecrets())
