"""Which carrier takes a message: a product's ordered route, each carrier's networks,
and carriers cooling off after a fault.

A product names an ordered list of carriers (its route). A message goes to the first
carrier of the route that serves the number's network and is not cooling; a carrier
that failed (down, out of balance, an upstream fault) is skipped for its cooling
period and the next one is used. Routing happens only for a message no carrier has
taken: once taken (or `unknown`), a message never goes to a second carrier.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from smsgate.core.phones import Carrier as Network
from smsgate.core.phones import network_of

# Names operators use for networks in a carrier's `networks` option.
NETWORKS: Mapping[str, Network | None] = {
    "cmcc": Network.CHINA_MOBILE,
    "cucc": Network.CHINA_UNICOM,
    "ctcc": Network.CHINA_TELECOM,
    "cbn": Network.CHINA_BROADNET,
    "virtual": Network.VIRTUAL,
    "intl": None,  # numbers outside mainland China (/wsms)
}
INTERNATIONAL = "intl"


def parse_route(text: str) -> tuple[str, ...]:
    """``"a, b"`` -> ``("a", "b")``: the stored form of a product's route, in order."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if len(set(names)) != len(names):
        raise ValueError(f"a carrier appears twice in the route {text!r}")
    return names


def parse_networks(text: str) -> frozenset[str]:
    """``"cmcc,cucc"`` -> the networks a carrier serves; empty means every number."""
    names = frozenset(n.strip().lower() for n in text.split(",") if n.strip())
    unknown = sorted(names - NETWORKS.keys())
    if unknown:
        raise ValueError(f"unknown network {', '.join(unknown)}; choose from {', '.join(NETWORKS)}")
    return names


def network_name(phone: str) -> str:
    """The network name (a key of NETWORKS) of a stored number."""
    if phone.startswith("+"):
        return INTERNATIONAL
    network = network_of(phone)
    for name, value in NETWORKS.items():
        if value is network:
            return name
    return INTERNATIONAL if network is Network.UNKNOWN else network.value


@dataclass(frozen=True, slots=True)
class Rules:
    """What routing needs to know of one configured carrier."""

    networks: frozenset[str] = frozenset()  # empty: every number
    cooling_seconds: float = 30.0

    def serves(self, network: str) -> bool:
        return not self.networks or network in self.networks


@dataclass(frozen=True, slots=True)
class Choice:
    """A carrier for the message, or why none: ``wait`` (every carrier that could take it
    is cooling or down; try again later) or a permanent ``error``."""

    carrier: str | None = None
    wait: bool = False
    error: str | None = None


def choose(
    route: Sequence[str],
    network: str,
    rules: Mapping[str, Rules],
    unavailable: Iterable[str],
) -> Choice:
    """The first carrier of ``route`` that exists, serves ``network`` and is available."""
    if not route:
        return Choice(error="the product names no carrier; `smsgate product set ID --carriers`")
    down = frozenset(unavailable)
    capable = [name for name in route if name in rules and rules[name].serves(network)]
    if not capable:
        missing = [name for name in route if name not in rules]
        if missing:
            named = ", ".join(repr(name) for name in missing)
            return Choice(error=f"no carrier named {named} (`smsgate carrier list`)")
        return Choice(error=f"no carrier in the route {','.join(route)} serves {network} numbers")
    for name in capable:
        if name not in down:
            return Choice(carrier=name)
    return Choice(wait=True)
