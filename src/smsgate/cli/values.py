"""Reading command-line values shared by several command groups: names, amounts, dates,
frequency caps. Each raises :class:`~smsgate.errors.InvalidInput` with the reason."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from typing import Annotated

import typer

from smsgate import errors

Name = Annotated[str, typer.Argument(help="Account username.")]
# Negative numbers must reach our own validation instead of being read as options.
NUMERIC_ARGS = {"ignore_unknown_options": True}

Cap = Annotated[int | None, typer.Option(min=0, help="0 blocks; see --reset.")]
Reset = Annotated[bool, typer.Option("--reset", help="Back to the defaults.")]


def whole_number(text: str, what: str) -> int:
    if not re.fullmatch(r"[+-]?\d{1,15}", text.strip()):
        raise errors.InvalidInput(f"{what} must be a whole number of units, got {text!r}")
    return int(text)


def parse_when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise errors.InvalidInput(
            f"cannot read {text!r} as a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)"
        ) from None
    if len(text.strip()) == 10:  # a bare date means the end of that day
        value = datetime.combine(value.date(), time.max)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_since(text: str | None) -> datetime | None:
    """A date as :func:`parse_when` reads it, or an age: 30m, 2h, 1d."""
    if text is None:
        return None
    units = {"m": 60, "h": 3600, "d": 86400}
    if text[:-1].isdigit() and text[-1:] in units:
        return datetime.now(UTC) - timedelta(seconds=int(text[:-1]) * units[text[-1]])
    try:
        return parse_when(text)
    except errors.InvalidInput:
        raise errors.InvalidInput(
            f"--since {text!r}: give YYYY-MM-DD[THH:MM] or an age such as 30m, 2h, 1d"
        ) from None


def caps(
    per_minute: int | None, per_hour: int | None, per_day: int | None, reset: bool
) -> dict[str, int | None]:
    """The per-number caps given (or all of them back to the default with ``reset``)."""
    return (
        maybe("freq_per_minute", per_minute, reset)
        | maybe("freq_per_hour", per_hour, reset)
        | maybe("freq_per_day", per_day, reset)
    )


def maybe(name: str, value: int | None, reset: bool) -> dict[str, int | None]:
    if reset:
        return {name: None}
    return {} if value is None else {name: value}


def show_caps(values: dict[str, int | None]) -> str:
    return ", ".join(
        f"{k.removeprefix('freq_')}={'default' if v is None else v}" for k, v in values.items()
    )
