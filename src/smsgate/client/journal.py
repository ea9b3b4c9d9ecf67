"""A send journal: which numbers a bulk send already reached, so a re-run sends none twice.

One JSON object per line, appended and fsynced: ``sending`` before a batch's request goes
out, then ``accepted``, ``failed`` (nothing was sent) or ``unknown`` (timed out: it may have
been accepted). A batch left at ``sending`` (the process died mid-request) counts as unknown.
``capped``: an unknown batch sent again (``--retry-unknown``) that the server refused with
`53` (the same content to the same number within the window): the first attempt most
likely went out, so like ``accepted`` it is never sent again (``restart`` forgets it).
Records carry a key, the hash of what is sent (endpoint, product, content), so the same file
of numbers can take several different messages; a ``restart`` record forgets that key's past.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from smsgate.client.bulk import Batch, BatchResult, unique
from smsgate.client.exceptions import FrequencyLimit

SUFFIX = ".smsgate-journal"
SENDING, ACCEPTED, FAILED, UNKNOWN, RESTART = "sending", "accepted", "failed", "unknown", "restart"
CAPPED = "capped"
SETTLED = frozenset({ACCEPTED, CAPPED})  # nothing moves a number out of these


def journal_path(numbers_file: Path) -> Path:
    """``numbers.csv`` -> ``numbers.csv.smsgate-journal``, beside it."""
    return numbers_file.with_name(numbers_file.name + SUFFIX)


def message_key(content: str, product: str | int | None = None, endpoint: str = "/sms") -> str:
    """What is being sent, hashed: the journal keeps no message text."""
    blob = json.dumps([endpoint, "" if product is None else str(product), content])
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class Progress:
    """Each number's latest state for one key, read back from the journal."""

    states: dict[str, str] = field(default_factory=dict)

    def apply(self, state: str, phones: Iterable[str]) -> None:
        if state == RESTART:
            self.states.clear()
            return
        for phone in phones:
            if self.states.get(phone) not in SETTLED:  # nothing un-sends a number
                self.states[phone] = state

    def numbers(self, *states: str) -> list[str]:
        return [phone for phone, state in self.states.items() if state in states]

    @property
    def accepted(self) -> list[str]:
        return self.numbers(ACCEPTED)

    @property
    def capped(self) -> list[str]:
        """Re-sent after an unknown outcome and refused by the frequency cap (53)."""
        return self.numbers(CAPPED)

    @property
    def unknown(self) -> list[str]:
        """Answered with a timeout, or never answered (the process died mid-request)."""
        return self.numbers(UNKNOWN, SENDING)

    def resume(self, phones: Iterable[str], *, retry_unknown: bool = False) -> Resume:
        """Sort the distinct ``phones`` into done, unknown and still to send."""
        accepted, unknown, capped = set(self.accepted), set(self.unknown), set(self.capped)
        plan = Resume([], [], [])
        for phone in unique(phones):
            if phone in accepted:
                plan.accepted.append(phone)
            elif phone in capped:
                plan.capped.append(phone)
            elif phone in unknown and not retry_unknown:
                plan.unknown.append(phone)
            else:
                plan.pending.append(phone)
                if phone in unknown:
                    plan.retried.append(phone)
        return plan


@dataclass(frozen=True)
class Resume:
    """A file's numbers: ``accepted``, ``capped`` and ``unknown`` are skipped, ``pending`` is
    sent; ``retried`` are the pending ones whose earlier outcome was unknown."""

    accepted: list[str]
    unknown: list[str]
    pending: list[str]
    capped: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)


class Journal:
    """The journal file of one bulk send (one ``key``)."""

    def __init__(self, path: Path, key: str) -> None:
        self.path = path
        self.key = key

    def load(self) -> Progress:
        progress = Progress()
        for record in self._records():
            phones = record.get("phones", [])
            if record.get("key") == self.key and isinstance(phones, list):
                progress.apply(str(record.get("state")), map(str, phones))
        return progress

    def _records(self) -> Iterable[dict[str, object]]:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    record = json.loads(line)
                except ValueError:  # a line torn by a crash mid-write
                    continue
                if isinstance(record, dict):
                    yield record

    def restart(self) -> None:
        self._append({"state": RESTART})

    def sending(self, batch: Batch) -> None:
        self._append({"state": SENDING, "batch": batch.index, "phones": list(batch.phones)})

    def record(self, result: BatchResult, *, retried: bool = False) -> None:
        state = outcome(result, retried=retried)
        entry = {"state": state, "batch": result.index, "phones": list(result.phones)}
        if result.error is not None:
            entry["error"] = str(result.error)
        self._append(entry)

    def _append(self, entry: dict[str, object]) -> None:
        at = datetime.now(UTC).isoformat(timespec="seconds")
        line = json.dumps({"key": self.key, **entry, "at": at}, ensure_ascii=False) + "\n"
        new = not self.path.exists()
        with self.path.open("a", encoding="utf-8") as file:
            file.write(line)
            file.flush()
            os.fsync(file.fileno())
        if new:
            _fsync_dir(self.path.parent)


def outcome(result: BatchResult, *, retried: bool = False) -> str:
    """The journal state of a batch; ``retried``: its numbers' earlier outcome was unknown."""
    if result.ok:
        return ACCEPTED
    if retried and isinstance(result.error, FrequencyLimit):
        return CAPPED
    return UNKNOWN if result.outcome_unknown else FAILED


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
