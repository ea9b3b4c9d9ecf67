"""`smsgate words ...`: the sensitive-word list (code 50)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from smsgate import errors
from smsgate.cli.context import DataDir, open_database
from smsgate.cli.output import out, print_table

group = typer.Typer(help="The sensitive-word list (code 50).", no_args_is_help=True)

Words = Annotated[list[str], typer.Argument(metavar="WORD...")]
Category = Annotated[str, typer.Option(help="A label for reports.")]


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="words")


@group.command("add")
def words_add(words: Words, category: Category = "general", data_dir: DataDir = None) -> None:
    """Add sensitive words."""
    with open_database(data_dir) as db:
        added = db.admin.add_words(words, category)
    out.print(f"added {added} word(s)")


@group.command("import")
def words_import(
    file: Annotated[Path, typer.Argument(help="UTF-8 text, one word per line (# comments).")],
    category: Category = "general",
    data_dir: DataDir = None,
) -> None:
    """Add every word of a file."""
    try:
        lines = file.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise errors.InvalidInput(f"cannot read {file}: {exc}") from None
    words = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    with open_database(data_dir) as db:
        added = db.admin.add_words(words, category)
    out.print(f"added {added} new word(s) of {len(words)} in {file}")


@group.command("list")
def words_list(data_dir: DataDir = None) -> None:
    """The sensitive-word list."""
    with open_database(data_dir) as db:
        rows = db.admin.words()
    print_table(("word", "category"), rows, empty="the word list is empty")


@group.command("remove")
def words_remove(words: Words, data_dir: DataDir = None) -> None:
    """Remove sensitive words."""
    with open_database(data_dir) as db:
        removed = db.admin.remove_words(words)
    out.print(f"removed {removed} word(s)")
