"""Operator use cases: accounts, money, keys, allowlists, signatures, products, words.

Validation lives here (and in core), so the CLI, the JSON API and the console all
refuse the same bad input with the same message.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from smsgate import errors
from smsgate.core import passwords, signatures
from smsgate.core.accounts import (
    AccountInfo,
    AccountStatus,
    LedgerKind,
    Product,
    api_key_hash,
    parse_cidr,
    password_md5,
    validate_cmpp_secret,
    validate_cmpp_sp_id,
    validate_ext_code,
    validate_username,
)
from smsgate.core.targets import TargetPolicy
from smsgate.ports import AccountStore, Clock

MAX_TOPUP = 10**12
PRODUCT_ID_MAX = 32
WORD_MAX = 100


@dataclass(frozen=True, slots=True)
class NewAccount:
    username: str
    api_key: str  # shown once; only its hash is stored


class AdminService:
    def __init__(
        self, store: AccountStore, clock: Clock, targets: TargetPolicy | None = None
    ) -> None:
        self._store = store
        self._clock = clock
        self._targets = targets or TargetPolicy()  # where MO URLs may point (SSRF)

    # -- accounts -------------------------------------------------------------------

    def create_account(self, username: str, password: str, balance: int = 0) -> NewAccount:
        validate_username(username)
        _check_password(password)
        if balance:
            _check_amount(balance)
        now = self._clock.now()
        self._store.create_account(username, passwords.hash_md5(password_md5(password)), now)
        if balance:
            self._store.post_ledger(username, balance, LedgerKind.TOPUP, "opening balance", now)
        return NewAccount(username, self.new_api_key(username))

    def show(self, username: str) -> AccountInfo:
        return self._store.account_info(username)

    def accounts(self) -> list[AccountInfo]:
        return self._store.list_accounts()

    def topup(self, username: str, amount: int, ref: str | None = None) -> int:
        _check_amount(amount)
        return self._store.post_ledger(username, amount, LedgerKind.TOPUP, ref, self._clock.now())

    def adjust(self, username: str, delta: int, ref: str) -> int:
        """A correction either way; a debit beyond the balance is refused."""
        if delta == 0 or abs(delta) > MAX_TOPUP:
            raise errors.InvalidInput(f"an adjustment is a non-zero whole number up to {MAX_TOPUP}")
        if not ref.strip():
            raise errors.InvalidInput("say why: an adjustment needs a reason (--reason)")
        return self._store.post_ledger(
            username, delta, LedgerKind.ADJUSTMENT, ref.strip()[:64], self._clock.now()
        )

    def configure(
        self,
        username: str,
        *,
        mo_url: str | None = None,
        expires_at: datetime | None = None,
        clear_expiry: bool = False,
        enabled: bool | None = None,
        ext_code: str | None = None,
        password: str | None = None,
        provider_codes: bool | None = None,
        unknown_g_default: bool | None = None,
        cmpp_sp_id: str | None = None,
        cmpp_secret: str | None = None,
    ) -> None:
        changes: dict[str, object] = {}
        if cmpp_sp_id is not None:
            changes["cmpp_sp_id"] = validate_cmpp_sp_id(cmpp_sp_id) if cmpp_sp_id else None
        if cmpp_secret is not None:
            changes["cmpp_secret"] = validate_cmpp_secret(cmpp_secret) if cmpp_secret else None
        if provider_codes is not None:
            changes["provider_codes"] = provider_codes
        if unknown_g_default is not None:
            changes["unknown_g_default"] = unknown_g_default
        if mo_url is not None:
            changes["mo_url"] = self._targets.check_url(mo_url) if mo_url else None
        if clear_expiry:
            changes["expires_at"] = None
        elif expires_at is not None:
            changes["expires_at"] = expires_at
        if enabled is not None:
            changes["status"] = (AccountStatus.ACTIVE if enabled else AccountStatus.DISABLED).value
        if ext_code is not None:
            changes["ext_code"] = validate_ext_code(ext_code) if ext_code else None
        if password is not None:
            _check_password(password)
            changes["password_hash"] = passwords.hash_md5(password_md5(password))
        if not changes:
            raise errors.InvalidInput("nothing to change; see `smsgate account set --help`")
        self._store.update_account(username, changes, self._clock.now())

    def new_api_key(self, username: str) -> str:
        key = passwords.new_api_key()
        self._store.add_api_key(username, api_key_hash(key), key[:4], self._clock.now())
        return key

    def allow_ip(self, username: str, cidrs: Sequence[str]) -> list[str]:
        networks = [str(parse_cidr(c)) for c in cidrs]
        if not networks:
            raise errors.InvalidInput("give at least one address or CIDR")
        self._store.add_allowed(username, networks, self._clock.now())
        return networks

    def disallow_ip(self, username: str, cidrs: Sequence[str]) -> list[str]:
        networks = [str(parse_cidr(c)) for c in cidrs]
        self._store.remove_allowed(username, networks, self._clock.now())
        return networks

    # -- signatures and products ----------------------------------------------------

    def add_signature(self, username: str, text: str) -> str:
        inner = text.strip().removeprefix(signatures.OPEN).removesuffix(signatures.CLOSE).strip()
        try:  # the same rule the send path applies (code 52), so a registered one can be used
            signatures.extract_signature(f"{signatures.OPEN}{inner}{signatures.CLOSE}")
        except errors.Rejected as bad:
            raise errors.InvalidInput(
                f"{bad.detail}; give a signature without its brackets "
                f"(短信宝 registers 【短信宝】), got {text!r}"
            ) from None
        self._store.add_signature(username, inner, self._clock.now())
        return inner

    def add_product(self, product: Product) -> Product:
        if not product.id or len(product.id) > PRODUCT_ID_MAX or not product.id.isprintable():
            raise errors.InvalidInput(f"a product id is 1-{PRODUCT_ID_MAX} printable characters")
        if not product.name.strip():
            raise errors.InvalidInput("a product needs a name")
        if product.price < 1:
            raise errors.InvalidInput("a product's price is a whole number of units, at least 1")
        self._store.add_product(product, self._clock.now())
        return product

    def products(self) -> list[Product]:
        return self._store.load_products()

    def grant_products(self, username: str, product_ids: Sequence[str]) -> None:
        if not product_ids:
            raise errors.InvalidInput("give at least one product id")
        self._store.grant_products(username, product_ids, self._clock.now())

    # -- words ----------------------------------------------------------------------

    def add_words(self, words: Iterable[str], category: str = "general") -> int:
        cleaned = [w.strip() for w in words if w.strip()]
        too_long = [w for w in cleaned if len(w) > WORD_MAX]
        if too_long:
            raise errors.InvalidInput(f"a word is at most {WORD_MAX} characters: {too_long[0]!r}")
        if not cleaned:
            raise errors.InvalidInput("no words given")
        return self._store.add_words(cleaned, category, self._clock.now())

    def remove_words(self, words: Iterable[str]) -> int:
        return self._store.remove_words([w.strip() for w in words], self._clock.now())

    def words(self) -> list[tuple[str, str]]:
        return self._store.list_words()


def _check_amount(amount: int) -> None:
    if amount <= 0 or amount > MAX_TOPUP:
        raise errors.InvalidInput(
            f"a top-up is a positive whole number of units up to {MAX_TOPUP}; got {amount}"
        )


def _check_password(password: str) -> None:
    if len(password) < 6 or len(password) > 128:
        raise errors.InvalidInput("a password is 6-128 characters")
