"""Where reply pushes may go: the Internet, not the gateway's own network (SSRF).

An account's MO URL is chosen by the customer, and the gateway makes requests to it. Left
unchecked, a customer could make the gateway fetch ``http://169.254.169.254/`` (a cloud's
metadata service, with credentials), ``http://127.0.0.1:6379/`` or any host on the
private network behind it. So a push target must be a public address:

- at set time (``check_url``): the URL's host may not be an address outside the public
  Internet (loopback, private, link-local, shared, multicast, unspecified, reserved, cloud
  metadata), in any spelling (``127.1``, ``0x7f000001``, ``[::ffff:127.0.0.1]``), nor a name
  that always means the machine itself or a metadata service (``localhost``,
  ``metadata.google.internal``);
- at connect time (the pusher): every address the host resolves to is checked with
  ``refusal``, and the connection goes to a checked address, so a name that resolves to an
  internal address, or starts to (DNS rebinding), is refused too.

An operator running a private deployment allows internal receivers with an allow-list of
networks and host names (``TargetPolicy``). Pure: no resolving, no sockets.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from smsgate import errors

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

URL_MAX = 2000
# Cloud instance metadata services: AWS/GCP/Azure/OpenStack, AWS over IPv6, AWS ECS task
# credentials, Alibaba Cloud, and Oracle Cloud's alias. Most are link-local anyway;
# Alibaba Cloud's is in the shared (CGNAT) range; named so the refusal says why.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200")
)
METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
NAT64 = ipaddress.ip_network("64:ff9b::/96")
# What inet_aton reads as an IPv4 address besides the dotted quad: 127.1, 0x7f.0.0.1, 2130706433.
_LEGACY_IPV4 = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$")


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """The operator's allow-list: internal networks and host names pushes may reach."""

    networks: tuple[Network, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> TargetPolicy:
        """From setting entries: each a CIDR or address (``10.0.0.0/8``, ``::1``) or a name."""
        networks: list[Network] = []
        hosts: set[str] = set()
        for entry in (e.strip() for e in entries):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(_normal_name(entry))
        return cls(tuple(networks), frozenset(hosts))

    def allows_host(self, host: str) -> bool:
        return _normal_name(host) in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)

    def refusal(self, address: IPAddress) -> str | None:
        """Why a push may not connect to ``address``; None if it may."""
        if self.allows_address(address):
            return None
        return address_refusal(address)

    def host_refusal(self, host: str) -> str | None:
        """Why a URL with this host is refused without resolving it; None if it may be used."""
        if self.allows_host(host):
            return None
        name = _normal_name(host)
        if name in LOCAL_NAMES or name.endswith(".localhost"):
            return f"{host} is this machine"
        if name in METADATA_NAMES:
            return f"{host} is a cloud metadata service"
        literal = ip_literal(name)
        if literal is not None:
            return self.refusal(literal)
        return None

    def check_url(self, url: str) -> str:
        """``url`` if it may be an MO URL, else InvalidInput saying why."""
        if not url.startswith(("http://", "https://")) or len(url) > URL_MAX or " " in url:
            raise errors.InvalidInput(f"the MO URL must be an http:// or https:// URL; got {url!r}")
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError as exc:
            raise errors.InvalidInput(f"the MO URL is malformed ({exc}); got {url!r}") from None
        if not parts.hostname:
            raise errors.InvalidInput(f"the MO URL has no host; got {url!r}")
        why = self.host_refusal(parts.hostname)
        if why is not None:
            raise errors.InvalidInput(
                f"the MO URL must reach a public address: {why} (an operator can allow "
                f"internal receivers with the push_allowed_targets setting); got {url!r}"
            )
        return url


def address_refusal(address: IPAddress) -> str | None:
    """Why ``address`` is not a public Internet address; None if it is one."""
    if address in METADATA_ADDRESSES:
        return f"{address} is a cloud metadata service"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            why = address_refusal(embedded)
            return None if why is None else f"{address} embeds {why}"
    for kind, flag in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("not a public address", not address.is_global),
    ):
        if flag:
            return f"{address} is {kind}"
    return None


def ip_literal(host: str) -> IPAddress | None:
    """The address a URL's host names literally, in any spelling a resolver accepts."""
    name = host.strip("[]").lower()
    try:
        return ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        pass
    if _LEGACY_IPV4.match(name):
        return _inet_aton(name)
    return None


def _inet_aton(name: str) -> ipaddress.IPv4Address | None:
    """What C's inet_aton makes of 1-4 parts in decimal, octal (0...) or hex (0x...): the
    last part fills the bytes the others leave (127.1 is 127.0.0.1)."""
    parts: list[int] = []
    for part in name.split("."):
        base = 16 if part.startswith("0x") else 8 if len(part) > 1 and part[0] == "0" else 10
        try:
            parts.append(int(part, base))
        except ValueError:
            return None
    *leading, last = parts
    if any(p > 0xFF for p in leading) or last >= 1 << (8 * (4 - len(leading))):
        return None
    value = last
    for index, byte in enumerate(leading):
        value |= byte << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64), which is what is reached."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _normal_name(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()
