"""Access logs without secrets: the `p` parameter (a password equivalent) is masked."""

from __future__ import annotations

import logging
import re

_SECRET = re.compile(r"([?&]p=)[^&\s\"]*")


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _SECRET.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args
            )
        return True


def install() -> None:
    logging.getLogger("uvicorn.access").addFilter(RedactSecrets())
