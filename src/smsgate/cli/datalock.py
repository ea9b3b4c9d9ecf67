"""Who is using a data dir: servers and workers hold a shared lock on ``smsgate.lock``
for as long as they run; `smsgate restore` needs it alone, so it never swaps the
database out from under a running server. An advisory ``flock``: released by the
operating system when the last process holding it ends, even by ``kill -9``."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from smsgate import errors

LOCK_NAME = "smsgate.lock"


def hold_shared(data_dir: Path) -> int:
    """Mark the data dir in use by this process (and its children) until it exits."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd  # kept open: closing it would release the lock


@contextmanager
def exclusive(data_dir: Path) -> Iterator[None]:
    """The data dir to this process alone, or InvalidInput if a server or worker runs."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise errors.InvalidInput(
                f"a server or worker is running on {data_dir}: stop it first"
            ) from None
        yield
    finally:
        os.close(fd)
