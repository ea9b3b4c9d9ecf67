"""The console's routes on the app: pages, and its static files served from the package."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from smsgate.console import customer, entry, inbox, ops
from smsgate.console.deps import ConsoleDeps
from smsgate.console.sessions import CUSTOMER, OPERATOR
from smsgate.console.web import Console, Handler, page

STATIC = Path(__file__).parent / "static"


def routes(deps: ConsoleDeps) -> list[Route]:
    console = Console(deps)
    table: list[tuple[str, str, Handler, str | None]] = [
        *((path, method, handler, None) for path, method, handler in entry.ROUTES),
        *((path, method, handler, CUSTOMER) for path, method, handler in customer.ROUTES),
        *((path, method, handler, CUSTOMER) for path, method, handler in inbox.ROUTES),
        *((path, method, handler, OPERATOR) for path, method, handler in ops.ROUTES),
    ]
    return [
        Route(path, page(console, role, handler), methods=[method], include_in_schema=False)
        for path, method, handler, role in table
    ]


def static_files() -> ASGIApp:
    return StaticFiles(directory=STATIC)
