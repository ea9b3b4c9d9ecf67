"""What the CLI prints: one console for results, one for errors, and table helpers.

Scripts read these lines, so they are never wrapped (``soft_wrap``) nor highlighted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.table import Table

# soft_wrap: a message is one line even in a pipe (rich would wrap it at 80 columns).
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


def say(line: str) -> None:
    """One line as is: no markup, whatever the terminal width."""
    out.print(line, markup=False, soft_wrap=True)


def fail(line: str) -> None:
    """An error line on stderr, ``error: ...``."""
    err.print(f"error: {line}", markup=False)


def print_table(
    columns: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    empty: str | None = None,
    markup: bool = False,
) -> None:
    """A table of ``rows`` under ``columns``; the line ``empty`` instead when there are none.

    Cells are data (content, names, URLs): no markup, so ``[...]`` is printed as is.
    """
    table = Table(*columns)
    for row in rows:
        table.add_row(*row)
    out.print(table if table.row_count or empty is None else empty, markup=markup)
