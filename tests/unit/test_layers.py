"""The layers of design.md, checked on the source: who may import whom.

Every module under src/smsgate is parsed (never imported); each import is sorted into the
layer it reaches (one of ours, or a third-party package) and checked against the rules
below. "Dependencies point inward": `core` imports nothing of ours but `errors`;
`services` import `core`, `ports`, `errors`; adapters import inward and never each other;
only the composition roots know every concrete class. The SDK (`smsgate.client`) stays
usable without the server's dependencies.

KNOWN_EXCEPTIONS lists the violations of today that are being fixed. The test also fails
when one of them no longer occurs, so the list can only shrink.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "smsgate"

# The layer of each top-level name under `smsgate`.
LAYER_OF = {
    "errors": "errors",
    "core": "core",
    "ports": "ports",
    "services": "services",
    "store": "store",
    "counters": "counters",
    "carriers": "carriers",
    "pushers": "pushers",
    "clock": "clock",  # the real Clock: an adapter of the Clock port
    "api": "api",
    "console": "console",
    "settings": "settings",
    "client": "client",
    # composition roots: they may import everything
    "app": "root",
    "database": "root",
    "cli": "root",
    "__main__": "root",
}
ROOTS = {"root"}

INWARD = {"core", "ports", "errors"}
# Which of our layers each layer may import (its own included where listed).
MAY_IMPORT: dict[str, set[str]] = {
    "errors": set(),
    "core": {"core", "errors"},
    "ports": {"core", "errors"},
    "services": {"services", *INWARD},
    "store": {"store", *INWARD},
    "counters": {"counters", *INWARD},
    "carriers": {"carriers", *INWARD},
    "pushers": {"pushers", *INWARD},
    "clock": set(INWARD),
    "api": {"api", "services", *INWARD},
    "console": {"console", "services", *INWARD},
    "settings": {"core", "errors"},
    "client": {"client", "errors"},
    "package": set(),  # smsgate/__init__.py
}

IO = {"asyncio", "anyio", "socket", "ssl", "selectors", "subprocess", "threading", "time"}
SQL = {"sqlalchemy", "alembic", "psycopg"}
WEB = {"starlette", "fastapi", "uvicorn"}
HTTP = {"httpx", "requests"}
# Third-party (and standard-library I/O) packages a layer must never import ...
NEVER: dict[str, set[str]] = {
    "core": IO | SQL | WEB | HTTP | {"redis"},
    "ports": IO | SQL | WEB | HTTP | {"redis"},
    "store": WEB | HTTP | {"redis"},
    "counters": SQL | WEB | HTTP,
    "carriers": SQL | WEB | {"redis"},
    "pushers": SQL | WEB | {"redis"},
    "clock": SQL | WEB | HTTP | {"redis"},
    "api": SQL | {"redis"},  # the API talks to services, not SQL
    "console": SQL | {"redis"},
    "settings": SQL | WEB | HTTP | {"redis"},
}
# ... or the only third-party packages it may import at all (the standard library aside).
ONLY: dict[str, set[str]] = {
    "services": set(),
    "client": {"httpx"},  # `pip install smsgate[client]` brings nothing else
}
# Modules that declare Protocols only: records and values live in `core`.
PROTOCOLS_ONLY = {"smsgate.ports"}

# Violations of today, each being fixed elsewhere. Remove an entry with its fix: the test
# fails while an entry here no longer occurs.
KNOWN_EXCEPTIONS: set[tuple[str, str]] = set()  # none today; keep it that way


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. "smsgate.store.messages"
    source: str
    is_package: bool = False


def our_modules() -> Iterator[Module]:
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        yield Module(name, path.read_text(encoding="utf-8"), is_package)


def layer(name: str) -> str:
    """The layer of a dotted name under `smsgate` (a module, or a name in one)."""
    parts = name.split(".")
    if len(parts) == 1:
        return "package"
    top = parts[1]
    return LAYER_OF.get(top, "package")  # `from smsgate import X`: a name in __init__


def imported(module: Module) -> set[str]:
    """Every dotted name the module imports, relative imports made absolute."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(module.source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    package = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def violations(module: Module) -> set[tuple[str, str]]:
    """(module, what it must not have): an import of ours or a package, or a class."""
    own = layer(module.name)
    if own in ROOTS:
        return set()
    found: set[tuple[str, str]] = set()
    for name in imported(module):
        top = name.split(".")[0]
        if top == "smsgate":
            target = layer(name)
            if target not in MAY_IMPORT[own]:
                found.add((module.name, ".".join(name.split(".")[:2])))
        elif top in NEVER.get(own, set()) or (
            own in ONLY and top not in sys.stdlib_module_names and top not in ONLY[own]
        ):
            found.add((module.name, top))
    if module.name in PROTOCOLS_ONLY:
        found |= {(module.name, f"class {name}") for name in _non_protocol_classes(module)}
    return found


def _non_protocol_classes(module: Module) -> list[str]:
    tree = ast.parse(module.source)
    return [
        node.name
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        and not any(ast.unparse(base).split("[")[0].endswith("Protocol") for base in node.bases)
    ]


def all_violations() -> set[tuple[str, str]]:
    return {v for module in our_modules() for v in violations(module)}


# -- the source ------------------------------------------------------------------------


def test_every_module_has_a_layer() -> None:
    modules = list(our_modules())
    assert len(modules) > 50  # the walk found the package
    unplaced = [m.name for m in modules if m.name != "smsgate" and layer(m.name) == "package"]
    assert unplaced == [], "add these to LAYER_OF"


def test_imports_follow_the_layers() -> None:
    new = sorted(all_violations() - KNOWN_EXCEPTIONS)
    assert new == [], "imports against design.md's layers:\n" + "\n".join(map(str, new))


def test_every_known_exception_still_occurs() -> None:
    fixed = sorted(KNOWN_EXCEPTIONS - all_violations())
    assert fixed == [], "fixed: remove from KNOWN_EXCEPTIONS:\n" + "\n".join(map(str, fixed))


def test_the_checker_sees_the_real_imports() -> None:
    """The composition root reaches every adapter it wires (so the walk is not blind)."""
    [app] = [m for m in our_modules() if m.name == "smsgate.app"]
    reached = {layer(name) for name in imported(app)}
    assert {"services", "store", "carriers", "counters", "pushers", "api"} <= reached


# -- the rules, on modules made up for the purpose -----------------------------------------


@pytest.mark.parametrize(
    ("name", "source", "expected"),
    [
        ("smsgate.core.x", "from smsgate import errors\nfrom . import units", set()),
        ("smsgate.core.x", "import asyncio", {"asyncio"}),
        ("smsgate.core.x", "from sqlalchemy import select", {"sqlalchemy"}),
        ("smsgate.core.x", "from ..ports import Clock", {"smsgate.ports"}),
        ("smsgate.services.x", "from smsgate.store.messages import S", {"smsgate.store"}),
        ("smsgate.services.x", "from ..api import smsbao", {"smsgate.api"}),
        ("smsgate.services.x", "import httpx\nimport asyncio", {"httpx"}),
        ("smsgate.services.x", "from smsgate.core import units\nfrom .. import ports", set()),
        ("smsgate.store.x", "from smsgate.carriers.simulator import C", {"smsgate.carriers"}),
        ("smsgate.store.x", "from smsgate.services.admin import A", {"smsgate.services"}),
        ("smsgate.api.x", "from smsgate.services.accept import A", set()),
        ("smsgate.api.x", "from smsgate.store import tables", {"smsgate.store"}),
        ("smsgate.api.x", "import sqlalchemy", {"sqlalchemy"}),
        ("smsgate.console.x", "from smsgate.counters.memory import M", {"smsgate.counters"}),
        ("smsgate.client.x", "from smsgate.settings import Settings", {"smsgate.settings"}),
        ("smsgate.client.x", "import starlette\nimport httpx\nimport json", {"starlette"}),
        ("smsgate.client.x", "from smsgate import errors\nfrom ._core import C", set()),
        ("smsgate.app", "from smsgate.store import db\nimport sqlalchemy", set()),
        ("smsgate.cli.accounts", "from smsgate.database import Database", set()),
        ("smsgate.database", "from smsgate.store import db", set()),
    ],
)
def test_rules(name: str, source: str, expected: set[str]) -> None:
    assert violations(Module(name, source)) == {(name, what) for what in expected}


def test_relative_imports_in_a_package_init() -> None:
    module = Module("smsgate.store", "from .messages import Store", is_package=True)
    assert imported(module) == {"smsgate.store.messages.Store"}


def test_ports_declares_protocols_only() -> None:
    source = (
        "from typing import Protocol\n"
        "class Clock(Protocol): ...\n"
        "class Store(Protocol[T]): ...\n"
        "class Record: ...\n"
    )
    assert violations(Module("smsgate.ports", source)) == {("smsgate.ports", "class Record")}
