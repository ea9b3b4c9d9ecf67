"""SQL for accounts, keys, allowlists, signatures, products, words and the ledger.

Every admin change runs in one transaction with an audit row and a bump of
``config_rev``, which running servers poll to refresh their in-memory snapshot.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from smsgate import errors
from smsgate.core.accounts import (
    Account,
    AccountInfo,
    AccountStatus,
    LedgerKind,
    Product,
    parse_cidr,
    sent_delta,
)
from smsgate.store import tables as t
from smsgate.store.db import reading

SYSTEM_ACTOR = "admin"
ACCOUNT_COLUMNS = frozenset({"status", "expires_at", "mo_url", "ext_code", "password_hash"})


class SqlAccountStore:
    """The AccountStore port on SQLAlchemy Core (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- snapshot loading -----------------------------------------------------------

    def config_rev(self) -> int:
        with reading(self.engine) as conn:
            return int(conn.execute(sa.select(t.config_rev.c.rev)).scalar_one())

    def load_accounts(self) -> list[Account]:
        return [account for account, _ in self._load(sa.true())]

    def _load(self, where: sa.ColumnElement[bool]) -> list[tuple[Account, sa.RowMapping]]:
        """Accounts with their keys, allowlists, signatures and grants, and their raw rows."""
        with reading(self.engine) as conn:
            rows = (
                conn.execute(sa.select(t.accounts).where(where).order_by(t.accounts.c.username))
                .mappings()
                .all()
            )
            keys = _group(
                conn,
                sa.select(t.api_keys.c.account_id, t.api_keys.c.key_hash).where(
                    t.api_keys.c.revoked_at.is_(None)
                ),
            )
            cidrs = _group(conn, sa.select(t.ip_allow.c.account_id, t.ip_allow.c.cidr))
            sigs = _group(conn, sa.select(t.signatures.c.account_id, t.signatures.c.text))
            grants = _group(
                conn, sa.select(t.account_products.c.account_id, t.account_products.c.product_id)
            )
        return [
            (
                _account(
                    row, keys[row["id"]], cidrs[row["id"]], sigs[row["id"]], grants[row["id"]]
                ),
                row,
            )
            for row in rows
        ]

    def load_products(self) -> list[Product]:
        with reading(self.engine) as conn:
            rows = conn.execute(sa.select(t.products).order_by(t.products.c.id)).mappings()
            return [_product(row) for row in rows]

    def load_words(self) -> list[str]:
        with reading(self.engine) as conn:
            return list(conn.execute(sa.select(t.words.c.word)).scalars())

    # -- accounts -------------------------------------------------------------------

    def create_account(self, username: str, password_hash: str, now: datetime) -> int:
        with self.engine.begin() as conn:
            exists = conn.execute(
                sa.select(t.accounts.c.id).where(t.accounts.c.username == username)
            ).first()
            if exists:
                raise errors.Conflict(f"account {username!r} already exists")
            account_id = conn.execute(
                t.accounts.insert().values(
                    username=username, password_hash=password_hash, created_at=now
                )
            ).inserted_primary_key
            assert account_id is not None
            record_change(conn, "account.create", username, None, now)
        return int(account_id[0])

    def account_info(self, username: str) -> AccountInfo:
        infos = self._infos(t.accounts.c.username == username)
        if not infos:
            raise errors.NotFound(
                f"no account {username!r}; `smsgate account list` shows the accounts"
            )
        return infos[0]

    def list_accounts(self) -> list[AccountInfo]:
        return self._infos(sa.true())

    def _infos(self, where: sa.ColumnElement[bool]) -> list[AccountInfo]:
        accounts = self._load(where)
        with reading(self.engine) as conn:
            hints = _group(
                conn,
                sa.select(t.api_keys.c.account_id, t.api_keys.c.hint).where(
                    t.api_keys.c.revoked_at.is_(None)
                ),
            )
        return [
            AccountInfo(
                account,
                int(row["balance"]),
                int(row["sent"]),
                row["created_at"],
                tuple(sorted(hints[account.id])),
            )
            for account, row in accounts
        ]

    def update_account(
        self, username: str, changes: dict[str, object], now: datetime, actor: str = SYSTEM_ACTOR
    ) -> None:
        unknown = set(changes) - ACCOUNT_COLUMNS
        if unknown:
            raise ValueError(f"not account settings: {sorted(unknown)}")
        with self.engine.begin() as conn:
            account_id = account_id_of(conn, username)
            if "ext_code" in changes and changes["ext_code"] is not None:
                _ensure_ext_code_free(conn, str(changes["ext_code"]), account_id)
            conn.execute(t.accounts.update().where(t.accounts.c.id == account_id).values(changes))
            detail = ", ".join(
                f"{k}=***" if k == "password_hash" else f"{k}={v}" for k, v in changes.items()
            )
            record_change(conn, "account.set", username, detail, now, actor)

    # -- ledger ---------------------------------------------------------------------

    def post_ledger(
        self, username: str, delta: int, kind: LedgerKind, ref: str | None, now: datetime
    ) -> int:
        """Append one ledger row and move the running balance; returns the new balance."""
        with self.engine.begin() as conn:
            account_id = account_id_of(conn, username)
            if not post(conn, account_id, delta, kind, ref, now):
                raise errors.InvalidInput(
                    f"{username!r} has too little balance for {delta}; the balance never goes "
                    "below zero"
                )
            _audit(conn, SYSTEM_ACTOR, f"ledger.{kind.value}", username, f"{delta:+d}", now)
            return int(
                conn.execute(
                    sa.select(t.accounts.c.balance).where(t.accounts.c.id == account_id)
                ).scalar_one()
            )

    def ledger_sum(self, username: str) -> int:
        with reading(self.engine) as conn:
            account_id = account_id_of(conn, username)
            total = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(t.ledger.c.delta), 0)).where(
                    t.ledger.c.account_id == account_id
                )
            ).scalar_one()
        return int(total)

    def balance(self, account_id: int) -> tuple[int, int]:
        """(sent, remaining) for the /query answer."""
        with reading(self.engine) as conn:
            row = conn.execute(
                sa.select(t.accounts.c.sent, t.accounts.c.balance).where(
                    t.accounts.c.id == account_id
                )
            ).one()
        return int(row.sent), int(row.balance)

    # -- keys, allowlist, signatures ------------------------------------------------

    def add_api_key(self, username: str, key_hash: str, hint: str, now: datetime) -> None:
        with self.engine.begin() as conn:
            account_id = account_id_of(conn, username)
            conn.execute(
                t.api_keys.insert().values(
                    account_id=account_id, key_hash=key_hash, hint=hint, created_at=now
                )
            )
            record_change(conn, "apikey.add", username, hint, now)

    def add_allowed(self, username: str, cidrs: Sequence[str], now: datetime) -> None:
        with self.engine.begin() as conn:
            account_id = account_id_of(conn, username)
            have = set(
                conn.execute(
                    sa.select(t.ip_allow.c.cidr).where(t.ip_allow.c.account_id == account_id)
                ).scalars()
            )
            new = [c for c in dict.fromkeys(cidrs) if c not in have]
            if new:
                conn.execute(
                    t.ip_allow.insert(), [{"account_id": account_id, "cidr": c} for c in new]
                )
            record_change(conn, "allowlist.add", username, " ".join(cidrs), now)

    def remove_allowed(self, username: str, cidrs: Sequence[str], now: datetime) -> None:
        with self.engine.begin() as conn:
            account_id = account_id_of(conn, username)
            conn.execute(
                t.ip_allow.delete().where(
                    t.ip_allow.c.account_id == account_id, t.ip_allow.c.cidr.in_(list(cidrs))
                )
            )
            record_change(conn, "allowlist.remove", username, " ".join(cidrs), now)

    def add_signature(self, username: str, text: str, now: datetime) -> None:
        with self.engine.begin() as conn:
            account_id = account_id_of(conn, username)
            exists = conn.execute(
                sa.select(t.signatures.c.text).where(
                    t.signatures.c.account_id == account_id, t.signatures.c.text == text
                )
            ).first()
            if exists:
                raise errors.Conflict(f"{username!r} already has the signature 【{text}】")
            conn.execute(
                t.signatures.insert().values(account_id=account_id, text=text, created_at=now)
            )
            record_change(conn, "signature.add", username, text, now)

    # -- products -------------------------------------------------------------------

    def add_product(self, product: Product, now: datetime) -> None:
        with self.engine.begin() as conn:
            if conn.execute(
                sa.select(t.products.c.id).where(t.products.c.id == product.id)
            ).first():
                raise errors.Conflict(f"product {product.id!r} already exists")
            conn.execute(
                t.products.insert().values(
                    id=product.id,
                    name=product.name,
                    price=product.price,
                    carrier=product.carrier,
                    template_required=product.template_required,
                    private=product.private,
                    created_at=now,
                )
            )
            record_change(conn, "product.add", product.id, product.name, now)

    def grant_products(self, username: str, product_ids: Sequence[str], now: datetime) -> None:
        with self.engine.begin() as conn:
            account_id = account_id_of(conn, username)
            known = set(
                conn.execute(
                    sa.select(t.products.c.id).where(t.products.c.id.in_(list(product_ids)))
                ).scalars()
            )
            missing = [p for p in product_ids if p not in known]
            if missing:
                raise errors.NotFound(
                    f"no product {missing[0]!r}; `smsgate product list` shows the products"
                )
            have = set(
                conn.execute(
                    sa.select(t.account_products.c.product_id).where(
                        t.account_products.c.account_id == account_id
                    )
                ).scalars()
            )
            new = [p for p in dict.fromkeys(product_ids) if p not in have]
            if new:
                conn.execute(
                    t.account_products.insert(),
                    [{"account_id": account_id, "product_id": p} for p in new],
                )
            record_change(conn, "product.grant", username, " ".join(product_ids), now)

    # -- words ----------------------------------------------------------------------

    def add_words(self, words: Iterable[str], category: str, now: datetime) -> int:
        wanted = list(dict.fromkeys(words))
        with self.engine.begin() as conn:
            have = set(conn.execute(sa.select(t.words.c.word)).scalars())
            new = [w for w in wanted if w not in have]
            if new:
                conn.execute(
                    t.words.insert(),
                    [{"word": w, "category": category, "created_at": now} for w in new],
                )
            record_change(conn, "words.add", f"{len(new)} words", category, now)
        return len(new)

    def remove_words(self, words: Iterable[str], now: datetime) -> int:
        with self.engine.begin() as conn:
            removed = conn.execute(t.words.delete().where(t.words.c.word.in_(list(words))))
            record_change(conn, "words.remove", f"{removed.rowcount} words", None, now)
        return int(removed.rowcount)

    def list_words(self) -> list[tuple[str, str]]:
        with reading(self.engine) as conn:
            rows = conn.execute(
                sa.select(t.words.c.word, t.words.c.category).order_by(t.words.c.word)
            ).all()
        return [(r.word, r.category) for r in rows]


def post(
    conn: sa.Connection,
    account_id: int,
    delta: int,
    kind: LedgerKind,
    ref: str | None,
    now: datetime,
) -> bool:
    """Append a ledger row and move balance/sent with it, in the caller's transaction.

    Returns False, changing nothing, when a debit would take the balance below zero.
    """
    if not move_balance(conn, account_id, delta, kind):
        return False
    append_ledger(conn, account_id, delta, kind, ref, now)
    return True


def move_balance(conn: sa.Connection, account_id: int, delta: int, kind: LedgerKind) -> bool:
    """The running balance half of a ledger posting; the caller must append the row.

    The update is conditional, so a debit that would go below zero changes nothing
    and returns False; the CHECK constraint is the last line of defence.
    """
    moved = conn.execute(
        t.accounts.update()
        .where(t.accounts.c.id == account_id, t.accounts.c.balance + delta >= 0)
        .values(
            balance=t.accounts.c.balance + delta,
            sent=t.accounts.c.sent + sent_delta(kind, delta),
        )
    )
    return moved.rowcount == 1


def append_ledger(
    conn: sa.Connection,
    account_id: int,
    delta: int,
    kind: LedgerKind,
    ref: str | None,
    now: datetime,
) -> None:
    conn.execute(
        t.ledger.insert().values(
            account_id=account_id, delta=delta, kind=kind.value, ref=ref, at=now
        )
    )


def _account(
    row: sa.RowMapping, keys: list[str], cidrs: list[str], sigs: list[str], grants: list[str]
) -> Account:
    return Account(
        id=int(row["id"]),
        username=row["username"],
        password_hash=row["password_hash"],
        status=AccountStatus(row["status"]),
        expires_at=row["expires_at"],
        allowlist=tuple(parse_cidr(c) for c in sorted(cidrs)),
        api_key_hashes=frozenset(keys),
        signatures=frozenset(sigs),
        products=frozenset(grants),
        mo_url=row["mo_url"],
        ext_code=row["ext_code"],
    )


def _product(row: sa.RowMapping) -> Product:
    return Product(
        id=row["id"],
        name=row["name"],
        price=int(row["price"]),
        carrier=row["carrier"],
        template_required=bool(row["template_required"]),
        private=bool(row["private"]),
    )


def _group(conn: sa.Connection, query: sa.Select[Any]) -> defaultdict[int, list[str]]:
    grouped: defaultdict[int, list[str]] = defaultdict(list)
    for owner, value in conn.execute(query):
        grouped[int(owner)].append(value)
    return grouped


def account_id_of(conn: sa.Connection, username: str) -> int:
    found = conn.execute(
        sa.select(t.accounts.c.id).where(t.accounts.c.username == username)
    ).scalar_one_or_none()
    if found is None:
        raise errors.NotFound(f"no account {username!r}; `smsgate account list` shows the accounts")
    return int(found)


def _ensure_ext_code_free(conn: sa.Connection, code: str, account_id: int) -> None:
    owner = conn.execute(
        sa.select(t.accounts.c.username).where(
            t.accounts.c.ext_code == code, t.accounts.c.id != account_id
        )
    ).scalar_one_or_none()
    if owner is not None:
        raise errors.Conflict(f"extended code {code} already belongs to {owner!r}")


def record_change(
    conn: sa.Connection,
    action: str,
    subject: str,
    detail: str | None,
    now: datetime,
    actor: str = SYSTEM_ACTOR,
) -> None:
    """Audit the change and tell running servers to reload their snapshot."""
    _audit(conn, actor, action, subject, detail, now)
    conn.execute(t.config_rev.update().values(rev=t.config_rev.c.rev + 1))


def _audit(
    conn: sa.Connection, actor: str, action: str, subject: str, detail: str | None, now: datetime
) -> None:
    conn.execute(
        t.audit.insert().values(actor=actor, action=action, subject=subject, detail=detail, at=now)
    )
