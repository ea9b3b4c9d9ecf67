"""SQL for what an account may send with: products, grants of private ones, signatures.

Every change runs in one transaction with an audit row and a bump of ``config_rev``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from smsgate import errors
from smsgate.core.accounts import Product
from smsgate.store import tables as t
from smsgate.store.accounts import account_id_of
from smsgate.store.audit import record_change
from smsgate.store.db import reading, writing


class SqlCatalog:
    """The Catalog port on SQLAlchemy Core (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def load_products(self) -> list[Product]:
        with reading(self.engine) as conn:
            rows = conn.execute(sa.select(t.products).order_by(t.products.c.id)).mappings()
            return [_product(row) for row in rows]

    def add_product(self, product: Product, now: datetime) -> None:
        with writing(self.engine) as conn:
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
        with writing(self.engine) as conn:
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

    def add_signature(self, username: str, text: str, now: datetime) -> None:
        with writing(self.engine) as conn:
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


def _product(row: sa.RowMapping) -> Product:
    return Product(
        id=row["id"],
        name=row["name"],
        price=int(row["price"]),
        carrier=row["carrier"],
        template_required=bool(row["template_required"]),
        private=bool(row["private"]),
    )
