"""What every database command runs in: settings built once from the flags, the database.

The root callback keeps its options in the Typer context (:class:`RootOptions`); a
command that opens the database also takes ``--data-dir`` itself (``smsgate serve
--data-dir D`` and ``smsgate --data-dir D serve`` both work; the command's wins).
Flags become constructor arguments of :class:`~smsgate.settings.Settings`, which
override the environment and the TOML file; nothing is written back to ``os.environ``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

try:
    from typer._click.globals import get_current_context
except ImportError:  # older Typer uses click itself
    from click import get_current_context  # type: ignore[no-redef]

if TYPE_CHECKING:  # the server extra; `smsgate send` works without it
    from smsgate.database import Database
    from smsgate.settings import Settings

DATA_DIR_HELP = "Data directory (SQLite lives here)."

# A command's own --data-dir; unset, the root's `smsgate --data-dir` (or its env var) holds.
DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help=DATA_DIR_HELP + " Also `smsgate --data-dir D ...` or SMSGATE_DATA_DIR.",
        show_default="./smsgate-data",
    ),
]


@dataclass(frozen=True)
class RootOptions:
    """The root's options, kept as ``ctx.obj`` for the commands below it."""

    data_dir: Path | None = None


def build_settings(data_dir: Path | None = None, **flags: Any) -> Settings:
    """Settings from this command's flags, then the root's, then env and TOML.

    A flag left unset (None) is not passed, so the environment still decides it.
    """
    from smsgate.settings import Settings

    given = {"data_dir": data_dir or _root_options().data_dir, **flags}
    return Settings(**{name: value for name, value in given.items() if value is not None})


@contextmanager
def open_database(
    data_dir: Path | None = None,
    *,
    settings: Settings | None = None,
    read_only: bool = False,
    upgrade: bool | None = None,
) -> Iterator[Database]:
    """The configured database (migrated if fresh), closed when the command is done.

    ``read_only``: a command that only reads never creates a database; it says which one
    it opened (on stderr), or that there is none where it looked.
    """
    from smsgate import errors
    from smsgate.cli.output import err
    from smsgate.database import Database

    settings = settings or build_settings(data_dir)
    if read_only:
        where = describe_database(settings)
        if settings.database_url is None and not (settings.data_dir / "smsgate.db").exists():
            raise errors.InvalidInput(
                f"no database at {where} (give --data-dir or SMSGATE_DATA_DIR, or start one "
                "with `smsgate serve`)"
            )
        err.print(f"database: {where}", markup=False)
    database = Database.open(settings, upgrade=upgrade)
    try:
        yield database
    finally:
        database.close()


def describe_database(settings: Settings) -> str:
    """Which database the settings name: the SQLite file, or the URL without its password."""
    if settings.database_url is None:
        return str((settings.data_dir / "smsgate.db").resolve())
    from sqlalchemy.engine import make_url

    return make_url(settings.database_url).render_as_string(hide_password=True)


def _root_options() -> RootOptions:
    ctx = get_current_context(silent=True)
    options = ctx.find_root().obj if ctx is not None else None
    return options if isinstance(options, RootOptions) else RootOptions()
