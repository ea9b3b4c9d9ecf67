"""Account rules that need no I/O: who may log in, from where, and with what."""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from smsgate import errors

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MD5_HEX_RE = re.compile(r"^[0-9a-fA-F]{32}$")
EXT_CODE_RE = re.compile(r"^[0-9]{1,6}$")
CMPP_SP_ID_RE = re.compile(r"^[0-9]{6}$")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class AccountStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class Account:
    """What the hot path needs to know about an account, loaded into memory."""

    id: int
    username: str
    password_hash: str  # argon2id of the lowercase MD5 hex of the password
    status: AccountStatus
    expires_at: datetime | None
    allowlist: tuple[IPNetwork, ...]  # empty: any address
    api_key_hashes: frozenset[str]
    signatures: frozenset[str] = frozenset()
    products: frozenset[str] = frozenset()  # private products granted to this account
    mo_url: str | None = None
    ext_code: str | None = None
    # Compatibility for clients that cannot change (protocol.md): answer only the
    # provider's documented codes; send an unknown product id `g` to the default product.
    provider_codes: bool = False
    unknown_g_default: bool = False
    # CMPP server login (docs/cmpp.md): the SP code and the shared secret, kept as given
    # because the CONNECT authenticator is an MD5 over it (it cannot be a one-way hash).
    cmpp_sp_id: str | None = None
    cmpp_secret: str | None = field(default=None, repr=False)  # never in a log line


def validate_username(name: str) -> str:
    if not USERNAME_RE.match(name):
        raise errors.InvalidInput(
            f"invalid username {name!r}: use 1-64 letters, digits, '_', '.', '@' or '-'"
        )
    return name


def validate_cmpp_sp_id(code: str) -> str:
    if not CMPP_SP_ID_RE.match(code):
        raise errors.InvalidInput(f"invalid CMPP SP code {code!r}: use 6 digits")
    return code


def validate_cmpp_secret(secret: str) -> str:
    if not 1 <= len(secret) <= 64 or not secret.isprintable():
        raise errors.InvalidInput("a CMPP secret is 1-64 printable characters")
    return secret


def validate_ext_code(code: str) -> str:
    if not EXT_CODE_RE.match(code):
        raise errors.InvalidInput(f"invalid extended code {code!r}: use 1-6 digits")
    return code


def password_md5(password: str) -> str:
    """The value SMSBao clients send as ``p``: the MD5 hex of the login password."""
    return hashlib.md5(password.encode("utf-8")).hexdigest()


def normalise_md5(p: str) -> str | None:
    """``p`` as lowercase MD5 hex, or None when it cannot be an MD5 (any case is accepted)."""
    return p.lower() if MD5_HEX_RE.match(p) else None


def api_key_hash(key: str) -> str:
    """ApiKeys are 128 random bits, so a plain SHA-256 is a safe way to store them."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_cidr(text: str) -> IPNetwork:
    """An IPv4 or IPv6 network; a bare address means just that host."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise errors.InvalidInput(
            f"invalid IP network {text!r}: give an address or a CIDR "
            "such as 203.0.113.0/24 or 2001:db8::/32"
        ) from None


def ip_allowed(allowlist: Iterable[IPNetwork], ip: str) -> bool:
    """An empty allowlist admits everyone; otherwise the address must fall in one network."""
    networks = tuple(allowlist)
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == net.version and address in net for net in networks)


def is_usable(account: Account, now: datetime) -> bool:
    """False when the account is disabled or past its expiry (SMSBao code 42)."""
    if account.status is not AccountStatus.ACTIVE:
        return False
    return account.expires_at is None or now < account.expires_at


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """The operator's view of an account: the hot-path record plus money and keys."""

    account: Account
    balance: int
    sent: int
    created_at: datetime
    key_hints: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    name: str
    price: int
    carrier: str  # the route: carrier names in order of preference, comma-separated
    template_required: bool
    private: bool

    @property
    def route(self) -> tuple[str, ...]:
        return tuple(name for name in (n.strip() for n in self.carrier.split(",")) if name)


class LedgerKind(StrEnum):
    TOPUP = "topup"
    CHARGE = "charge"
    REFUND = "refund"
    ADJUSTMENT = "adjustment"


def sent_delta(kind: LedgerKind, delta: int) -> int:
    """How a ledger row moves ``sent`` (units charged net of refunds).

    A charge is a negative delta that adds to ``sent``; a refund is a positive delta
    that takes back from it. Top-ups and adjustments are not sending.
    """
    return -delta if kind in (LedgerKind.CHARGE, LedgerKind.REFUND) else 0


class TemplateStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class TemplateRecord:
    """A template an account applied for on a product, and its review."""

    id: int
    username: str
    account_id: int
    product_id: str
    text: str
    status: TemplateStatus
    reviewer: str | None
    note: str | None
    created_at: datetime
