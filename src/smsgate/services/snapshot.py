"""The in-memory view of accounts and products that the hot path reads.

Admin commands write the database and bump ``config_rev``; a server polls that
counter and reloads when it moves, so a change is seen within one poll interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from smsgate.core.accounts import Account, Product
from smsgate.ports import AccountStore


@dataclass(frozen=True, slots=True)
class Snapshot:
    rev: int
    accounts: dict[str, Account] = field(default_factory=dict)
    products: dict[str, Product] = field(default_factory=dict)
    words: tuple[str, ...] = ()
    by_api_key: dict[str, Account] = field(default_factory=dict)  # key hash -> account


class SnapshotHolder:
    """Holds the newest Snapshot; `refresh()` is cheap when nothing changed."""

    def __init__(self, store: AccountStore) -> None:
        self._store = store
        self._current = self._load()

    @property
    def current(self) -> Snapshot:
        return self._current

    def refresh(self) -> bool:
        """Reload if an admin change happened; True when it did."""
        if self._store.config_rev() == self._current.rev:
            return False
        self._current = self._load()
        return True

    def _load(self) -> Snapshot:
        # Read the counter first: a change that lands during the load bumps it again,
        # so the next refresh reloads rather than missing it.
        rev = self._store.config_rev()
        accounts = self._store.load_accounts()
        return Snapshot(
            rev=rev,
            accounts={a.username: a for a in accounts},
            by_api_key={h: a for a in accounts for h in a.api_key_hashes},
            products={p.id: p for p in self._store.load_products()},
            words=tuple(self._store.load_words()),
        )
