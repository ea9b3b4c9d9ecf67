"""SQL for accounts with their API keys and IP allowlists, and the account look-up the
other stores share (``account_id_of``).

Every admin change runs in one transaction with an audit row and a bump of
``config_rev``, which running servers poll to refresh their in-memory snapshot.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from smsgate import errors
from smsgate.core.accounts import (
    Account,
    AccountInfo,
    AccountStatus,
    parse_cidr,
)
from smsgate.store import tables as t
from smsgate.store.audit import record_change
from smsgate.store.db import reading, writing

ACCOUNT_COLUMNS = frozenset(
    {
        "status",
        "expires_at",
        "mo_url",
        "ext_code",
        "password_hash",
        "provider_codes",
        "unknown_g_default",
        "cmpp_sp_id",
        "cmpp_secret",
    }
)

SECRET_COLUMNS = frozenset({"password_hash", "cmpp_secret"})  # never written to the audit


class SqlAccounts:
    """The Accounts port on SQLAlchemy Core (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- snapshot loading -----------------------------------------------------------

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

    # -- accounts -------------------------------------------------------------------

    def create_account(self, username: str, password_hash: str, now: datetime) -> int:
        with writing(self.engine) as conn:
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
        self, username: str, changes: dict[str, object], now: datetime, actor: str | None = None
    ) -> None:
        unknown = set(changes) - ACCOUNT_COLUMNS
        if unknown:
            raise ValueError(f"not account settings: {sorted(unknown)}")
        with writing(self.engine) as conn:
            account_id = account_id_of(conn, username)
            if "ext_code" in changes and changes["ext_code"] is not None:
                _ensure_ext_code_free(conn, str(changes["ext_code"]), account_id)
            if changes.get("cmpp_sp_id") is not None:
                _ensure_sp_id_free(conn, str(changes["cmpp_sp_id"]), account_id)
            conn.execute(t.accounts.update().where(t.accounts.c.id == account_id).values(changes))
            detail = ", ".join(
                f"{k}=***" if k in SECRET_COLUMNS else f"{k}={v}" for k, v in changes.items()
            )
            record_change(conn, "account.set", username, detail, now, actor)

    # -- keys and allowlist ---------------------------------------------------------

    def add_api_key(self, username: str, key_hash: str, hint: str, now: datetime) -> None:
        with writing(self.engine) as conn:
            account_id = account_id_of(conn, username)
            conn.execute(
                t.api_keys.insert().values(
                    account_id=account_id, key_hash=key_hash, hint=hint, created_at=now
                )
            )
            record_change(conn, "apikey.add", username, hint, now)

    def add_allowed(self, username: str, cidrs: Sequence[str], now: datetime) -> None:
        with writing(self.engine) as conn:
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
        with writing(self.engine) as conn:
            account_id = account_id_of(conn, username)
            conn.execute(
                t.ip_allow.delete().where(
                    t.ip_allow.c.account_id == account_id, t.ip_allow.c.cidr.in_(list(cidrs))
                )
            )
            record_change(conn, "allowlist.remove", username, " ".join(cidrs), now)


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
        provider_codes=bool(row["provider_codes"]),
        unknown_g_default=bool(row["unknown_g_default"]),
        cmpp_sp_id=row["cmpp_sp_id"],
        cmpp_secret=row["cmpp_secret"],
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


def _ensure_sp_id_free(conn: sa.Connection, code: str, account_id: int) -> None:
    owner = conn.execute(
        sa.select(t.accounts.c.username).where(
            t.accounts.c.cmpp_sp_id == code, t.accounts.c.id != account_id
        )
    ).scalar_one_or_none()
    if owner is not None:
        raise errors.Conflict(f"CMPP SP code {code} already belongs to {owner!r}")


def _ensure_ext_code_free(conn: sa.Connection, code: str, account_id: int) -> None:
    owner = conn.execute(
        sa.select(t.accounts.c.username).where(
            t.accounts.c.ext_code == code, t.accounts.c.id != account_id
        )
    ).scalar_one_or_none()
    if owner is not None:
        raise errors.Conflict(f"extended code {code} already belongs to {owner!r}")
