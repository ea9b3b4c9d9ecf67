"""Who the audit trail names for a change.

The CLI acts as ``admin`` (whoever can run it on the server). A console request acts as its
signed-in user, ``operator:NAME`` or ``customer:NAME``: the console says so once per request
(``acting_as``) and every audit row written while serving it carries that name, so each
action is audited once, by the code that makes the change, under the person who asked.

A context variable, not a parameter on every admin method: it follows the request into the
thread pool (each request runs in its own context), and a method that audits cannot forget it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

SYSTEM = "admin"

_current: ContextVar[str] = ContextVar("smsgate_actor", default=SYSTEM)


def current() -> str:
    """The name audit rows are written under now."""
    return _current.get()


@contextmanager
def acting_as(name: str) -> Iterator[None]:
    """Audit what is changed inside the block under ``name``; the name before it is back
    after it, even if the server reuses the context for another request."""
    token = _current.set(name)
    try:
        yield
    finally:
        _current.reset(token)
