"""The carriers a server runs: built from their stored configuration, kept in step with it.

`smsgate carrier add/set/remove` writes the database; the server compares the rows with
what it runs (every second) and starts what is new, restarts what changed and stops
what is gone. The dispatcher reads `carriers` and `rules` live, so a change needs no
restart. A carrier that cannot be built (bad options, a missing library) is reported in
its status and left out; the others keep running.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from smsgate.carriers.kinds import kind_of, rules_of
from smsgate.core.carriers import CarrierConfig
from smsgate.core.routing import Rules
from smsgate.ports import Carrier, DeliverySink

log = logging.getLogger(__name__)

Build = Callable[[CarrierConfig], Carrier]


def build_from_kind(config: CarrierConfig) -> Carrier:
    return kind_of(config.kind).build(config.name, config.options)


class CarrierRegistry:
    def __init__(self, builtin: Mapping[str, Carrier], build: Build = build_from_kind) -> None:
        # Built-in carriers (the simulator) run unless a configured carrier takes the name.
        self._builtin = dict(builtin)
        self._build = build
        self.carriers: dict[str, Carrier] = {}
        self.rules: dict[str, Rules] = {}
        self._configs: dict[str, CarrierConfig] = {}
        self._broken: dict[str, str] = {}  # name -> why it could not be built
        self._broken_config: dict[str, CarrierConfig] = {}
        self._sink: DeliverySink | None = None

    async def start(self, sink: DeliverySink, configs: Sequence[CarrierConfig]) -> None:
        self._sink = sink
        for name, carrier in self._builtin.items():
            if name not in {c.name for c in configs}:
                await self._run(name, carrier, Rules())
        await self.apply(configs)

    async def apply(self, configs: Sequence[CarrierConfig]) -> list[str]:
        """Make the running carriers match ``configs``; the names that changed."""
        wanted = {c.name: c for c in configs if c.enabled}
        changed: list[str] = []
        for name in list(self._configs):
            if wanted.get(name) != self._configs[name]:
                await self._stop(name)
                changed.append(name)
        for name in list(self._broken):
            if wanted.get(name) != self._broken_config.get(name):
                self._broken.pop(name)
                self._broken_config.pop(name)
        for name, config in wanted.items():
            if name in self._configs or name in self._broken:
                continue
            if name in self._builtin and name in self.carriers:
                await self._stop(name)  # a configured carrier replaces the built-in one
            try:
                carrier = self._build(config)
            except Exception as exc:  # bad options or a missing library: say so, run the rest
                log.error("carrier %s could not be built: %s", name, exc)
                self._broken[name] = str(exc)
                self._broken_config[name] = config
                continue
            self._configs[name] = config
            await self._run(name, carrier, rules_of(config))
            if name not in changed:
                changed.append(name)
        for name, carrier in self._builtin.items():  # a removed override gives it back
            if name not in self.carriers and name not in wanted:
                await self._run(name, carrier, Rules())
        return changed

    async def stop(self) -> None:
        for name in list(self.carriers):
            await self._stop(name)

    def statuses(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name, carrier in self.carriers.items():
            try:
                out[name] = dict(carrier.status())
            except Exception as exc:  # a status must never take the server down
                out[name] = {"state": "error", "last_error": str(exc)}
        for name, why in self._broken.items():
            out[name] = {"state": "broken", "last_error": why}
        return out

    async def _run(self, name: str, carrier: Carrier, rules: Rules) -> None:
        assert self._sink is not None, "start() first"
        self.carriers[name] = carrier
        self.rules[name] = rules
        await carrier.start(self._sink)
        log.info("carrier %s started", name)

    async def _stop(self, name: str) -> None:
        carrier = self.carriers.pop(name, None)
        self.rules.pop(name, None)
        self._configs.pop(name, None)
        if carrier is not None:
            try:
                await carrier.stop()
            except Exception:
                log.exception("carrier %s did not stop cleanly", name)
            log.info("carrier %s stopped", name)
