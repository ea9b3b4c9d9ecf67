"""Operators' carrier configuration: add, change, remove carriers and set products' routes.

What each kind of carrier accepts is the kind's business (carriers/kinds.py, handed in
as a `KindCatalog` by the composition root); this service checks names and routes,
keeps secrets out of what is shown and audited, and writes through the store.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from smsgate import errors
from smsgate.core.carriers import CarrierConfig, CarrierStatus
from smsgate.core.routing import parse_route
from smsgate.ports import Clock

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
STATUS_FRESH = timedelta(seconds=10)  # nodes report every couple of seconds


class KindCatalog(Protocol):
    def kinds(self) -> Sequence[str]: ...
    def validate(
        self, kind: str, given: Mapping[str, Any], base: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """The options, checked and typed; ValueError saying what is wrong."""
        ...

    def shown(self, kind: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """The options with secrets replaced."""
        ...


class CarrierStore(Protocol):
    def carriers(self) -> list[CarrierConfig]: ...
    def carrier(self, name: str) -> CarrierConfig: ...
    def add_carrier(self, config: CarrierConfig, now: Any, shown: str) -> None: ...
    def update_carrier(self, config: CarrierConfig, now: Any, shown: str) -> None: ...
    def remove_carrier(self, name: str, now: Any) -> list[str]: ...
    def set_route(self, product_id: str, route: Sequence[str], now: Any) -> None: ...
    def statuses(self, fresh_since: Any) -> list[CarrierStatus]: ...


@dataclass(frozen=True, slots=True)
class CarrierView:
    """A carrier as operators see it: options without secrets, and its live state."""

    name: str
    kind: str
    enabled: bool
    options: dict[str, Any]
    live: dict[str, dict[str, Any]]  # node -> status


class CarrierAdmin:
    def __init__(
        self, store: CarrierStore, kinds: KindCatalog, clock: Clock, builtin: Sequence[str] = ()
    ) -> None:
        self._store = store
        self._kinds = kinds
        self._clock = clock
        self._builtin = tuple(builtin)  # names that exist without configuration

    def add(self, name: str, kind: str, given: Mapping[str, Any]) -> CarrierView:
        if not _NAME.fullmatch(name):
            raise errors.InvalidInput(
                "a carrier name is 1-64 letters, digits, '.', '_' or '-', starting with a "
                f"letter or digit; got {name!r}"
            )
        options = self._validate(kind, given, None)
        config = CarrierConfig(name, kind, options)
        self._store.add_carrier(config, self._clock.now(), self._audit_line(config))
        return self._view(config, {})

    def change(
        self, name: str, given: Mapping[str, Any], enabled: bool | None = None
    ) -> CarrierView:
        old = self._store.carrier(name)
        options = self._validate(old.kind, given, old.options)
        config = CarrierConfig(name, old.kind, options, old.enabled if enabled is None else enabled)
        self._store.update_carrier(config, self._clock.now(), self._audit_line(config))
        return self._view(config, {})

    def remove(self, name: str) -> None:
        users = self._store.remove_carrier(name, self._clock.now())
        if users:
            raise errors.Conflict(
                f"products {', '.join(users)} still route through {name}; change their route "
                "first (`smsgate product set ID --carriers ...`)"
            )

    def set_route(self, product_id: str, carriers: str) -> tuple[str, ...]:
        try:
            route = parse_route(carriers)
        except ValueError as exc:
            raise errors.InvalidInput(str(exc)) from None
        if not route:
            raise errors.InvalidInput("name at least one carrier: --carriers A[,B...]")
        known = {c.name for c in self._store.carriers()} | set(self._builtin)
        missing = [n for n in route if n not in known]
        if missing:
            raise errors.NotFound(
                f"no carrier {', '.join(missing)}; add it first (`smsgate carrier add`)"
            )
        self._store.set_route(product_id, route, self._clock.now())
        return route

    def list(self) -> list[CarrierView]:
        live = self._live()
        return [self._view(c, live.get(c.name, {})) for c in self._store.carriers()]

    def show(self, name: str) -> CarrierView:
        return self._view(self._store.carrier(name), self._live().get(name, {}))

    def live_builtin(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Live state of carriers that run without configuration (the simulator)."""
        live = self._live()
        return {name: live[name] for name in self._builtin if name in live}

    def _validate(
        self, kind: str, given: Mapping[str, Any], base: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        try:
            return self._kinds.validate(kind, given, base)
        except ValueError as exc:
            raise errors.InvalidInput(str(exc)) from None

    def _view(self, config: CarrierConfig, live: dict[str, dict[str, Any]]) -> CarrierView:
        shown = self._kinds.shown(config.kind, config.options)
        return CarrierView(config.name, config.kind, config.enabled, shown, live)

    def _audit_line(self, config: CarrierConfig) -> str:
        shown = self._kinds.shown(config.kind, config.options)
        return f"{config.kind} " + " ".join(f"{k}={v}" for k, v in sorted(shown.items()))

    def _live(self) -> dict[str, dict[str, dict[str, Any]]]:
        found: dict[str, dict[str, dict[str, Any]]] = {}
        for status in self._store.statuses(self._clock.now() - STATUS_FRESH):
            found.setdefault(status.name, {})[status.node] = dict(status.status)
        return found
