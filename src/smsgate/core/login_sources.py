"""Where a login attempt comes from, at the two grains failed logins are counted in.

A *source* is what one client controls: an IPv4 address, or an IPv6 /64 (one subscriber's
LAN; a host picks any address in it at will). A *network* is the neighbourhood a single
attacker can easily spread over: an IPv4 /24, an IPv6 /48. An IPv4-mapped IPv6 address
counts as the IPv4 address it carries. A peer that is no IP address (a Unix socket, a test
client) is its own source and network.
"""

from __future__ import annotations

import ipaddress
from typing import NamedTuple

IPV4_NETWORK_PREFIX = 24
IPV6_SOURCE_PREFIX = 64
IPV6_NETWORK_PREFIX = 48


class LoginSource(NamedTuple):
    source: str
    network: str


def login_source(ip: str) -> LoginSource:
    """The source and network an address belongs to, as stable strings."""
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return LoginSource(f"peer:{ip}", f"peer:{ip}")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if isinstance(address, ipaddress.IPv4Address):
        network = ipaddress.ip_network(f"{address}/{IPV4_NETWORK_PREFIX}", strict=False)
        return LoginSource(str(address), str(network))
    source = ipaddress.ip_network(f"{address}/{IPV6_SOURCE_PREFIX}", strict=False)
    network = ipaddress.ip_network(f"{address}/{IPV6_NETWORK_PREFIX}", strict=False)
    return LoginSource(str(source), str(network))
