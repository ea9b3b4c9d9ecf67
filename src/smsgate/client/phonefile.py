"""Reading the numbers of a bulk send from a CSV file."""

from __future__ import annotations

import csv
import re
from pathlib import Path

#: Header names (any case) of the column that holds the numbers.
PHONE_COLUMNS = ("phone", "mobile", "m", "手机", "手机号", "手机号码", "号码")
_LOOKS_LIKE_PHONE = re.compile(r"\+?[\d\s()-]{5,}")


def read_phones(path: Path) -> list[str]:
    """The numbers in ``path``: the column named phone/mobile/m (or 手机号…) when the first
    row is a header naming one, else the first column; a header row is skipped, empty cells
    are dropped. UTF-8, with or without a byte-order mark."""
    with path.open(encoding="utf-8-sig", newline="") as file:
        rows = [row for row in csv.reader(file) if any(cell.strip() for cell in row)]
    if not rows:
        return []
    column = _phone_column(rows[0])
    if column is not None or not _LOOKS_LIKE_PHONE.fullmatch(rows[0][0].strip()):
        rows = rows[1:]
    index = column or 0
    return [row[index].strip() for row in rows if len(row) > index and row[index].strip()]


def _phone_column(header: list[str]) -> int | None:
    names = [cell.strip().lower() for cell in header]
    return next((i for i, name in enumerate(names) if name in PHONE_COLUMNS), None)
