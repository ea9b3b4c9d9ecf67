"""SQL for configured carriers and the live status nodes report of them.

Changes run in one transaction with an audit row and a bump of ``config_rev``; a
running server compares the rows with what it runs and restarts what changed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from smsgate import errors
from smsgate.core.carriers import CarrierConfig, CarrierStatus
from smsgate.store import tables as t
from smsgate.store.audit import record_change
from smsgate.store.db import reading, writing


class SqlCarrierStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def carriers(self) -> list[CarrierConfig]:
        with reading(self.engine) as conn:
            rows = conn.execute(sa.select(t.carriers).order_by(t.carriers.c.name)).mappings()
            return [_config(row) for row in rows]

    def carrier(self, name: str) -> CarrierConfig:
        with reading(self.engine) as conn:
            row = (
                conn.execute(sa.select(t.carriers).where(t.carriers.c.name == name))
                .mappings()
                .first()
            )
        if row is None:
            raise errors.NotFound(f"no carrier {name!r}; `smsgate carrier list` shows them")
        return _config(row)

    def add_carrier(self, config: CarrierConfig, now: datetime, shown: str) -> None:
        """``shown``: the change as the audit log may show it (no secrets)."""
        with writing(self.engine) as conn:
            exists = conn.execute(
                sa.select(t.carriers.c.name).where(t.carriers.c.name == config.name)
            ).first()
            if exists:
                raise errors.Conflict(f"carrier {config.name!r} already exists")
            conn.execute(
                t.carriers.insert().values(
                    name=config.name,
                    kind=config.kind,
                    options=json.dumps(dict(config.options), sort_keys=True),
                    enabled=config.enabled,
                    created_at=now,
                    updated_at=now,
                )
            )
            record_change(conn, "carrier.add", config.name, shown, now)

    def update_carrier(self, config: CarrierConfig, now: datetime, shown: str) -> None:
        with writing(self.engine) as conn:
            moved = conn.execute(
                t.carriers.update()
                .where(t.carriers.c.name == config.name)
                .values(
                    options=json.dumps(dict(config.options), sort_keys=True),
                    enabled=config.enabled,
                    updated_at=now,
                )
            )
            if moved.rowcount == 0:
                raise errors.NotFound(f"no carrier {config.name!r}")
            record_change(conn, "carrier.set", config.name, shown, now)

    def remove_carrier(self, name: str, now: datetime) -> list[str]:
        """Remove it; the products whose route still names it are returned (refused)."""
        with writing(self.engine) as conn:
            users = [
                row.id
                for row in conn.execute(sa.select(t.products.c.id, t.products.c.carrier))
                if name in (n.strip() for n in row.carrier.split(","))
            ]
            if users:
                return users
            gone = conn.execute(t.carriers.delete().where(t.carriers.c.name == name))
            if gone.rowcount == 0:
                raise errors.NotFound(f"no carrier {name!r}")
            conn.execute(t.carrier_status.delete().where(t.carrier_status.c.name == name))
            record_change(conn, "carrier.remove", name, None, now)
            return []

    def set_route(self, product_id: str, route: Sequence[str], now: datetime) -> None:
        with writing(self.engine) as conn:
            moved = conn.execute(
                t.products.update()
                .where(t.products.c.id == product_id)
                .values(carrier=",".join(route))
            )
            if moved.rowcount == 0:
                raise errors.NotFound(
                    f"no product {product_id!r}; `smsgate product list` shows the products"
                )
            record_change(conn, "product.route", product_id, ",".join(route), now)

    # -- live status, written by running nodes ---------------------------------------

    def report_status(
        self, node: str, statuses: Mapping[str, Mapping[str, Any]], now: datetime
    ) -> None:
        table = t.carrier_status
        with writing(self.engine) as conn:
            conn.execute(table.delete().where(table.c.node == node))
            if statuses:
                conn.execute(
                    table.insert(),
                    [
                        {
                            "name": name,
                            "node": node,
                            "status": json.dumps(dict(status), default=str),
                            "updated_at": now,
                        }
                        for name, status in statuses.items()
                    ],
                )

    def statuses(self, fresh_since: datetime) -> list[CarrierStatus]:
        """What running nodes reported since then (older rows are of stopped nodes)."""
        table = t.carrier_status
        with reading(self.engine) as conn:
            rows = conn.execute(
                sa.select(table).where(table.c.updated_at >= fresh_since).order_by(table.c.name)
            ).mappings()
            return [
                CarrierStatus(r["name"], r["node"], json.loads(r["status"]), r["updated_at"])
                for r in rows
            ]

    def forget_node(self, node: str) -> None:
        with writing(self.engine) as conn:
            conn.execute(t.carrier_status.delete().where(t.carrier_status.c.node == node))


def _config(row: sa.RowMapping) -> CarrierConfig:
    return CarrierConfig(row["name"], row["kind"], json.loads(row["options"]), row["enabled"])
