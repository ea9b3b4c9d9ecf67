"""SQL for what decides whether a send is allowed: templates, opt-outs, frequency caps.

Each change bumps ``config_rev`` so running servers reload their snapshot.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import sqlalchemy as sa

from smsgate import errors
from smsgate.core import actors
from smsgate.core.accounts import TemplateRecord, TemplateStatus
from smsgate.core.upstream_templates import TEMPLATE_KINDS
from smsgate.store import tables as t
from smsgate.store.accounts import account_id_of
from smsgate.store.audit import record_change
from smsgate.store.db import reading, writing

LIMIT_FIELDS = ("freq_per_minute", "freq_per_hour", "freq_per_day")


class SqlPolicyStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- templates ------------------------------------------------------------------

    def add_template(self, username: str, product_id: str, text: str, now: datetime) -> int:
        with writing(self.engine) as conn:
            account_id = account_id_of(conn, username)
            if (
                conn.execute(
                    sa.select(t.products.c.id).where(t.products.c.id == product_id)
                ).first()
                is None
            ):
                raise errors.NotFound(
                    f"no product {product_id!r}; `smsgate product list` shows them"
                )
            template_id = conn.execute(
                t.templates.insert()
                .values(account_id=account_id, product_id=product_id, text=text, created_at=now)
                .returning(t.templates.c.id)
            ).scalar_one()
            record_change(conn, "template.add", username, f"#{template_id} {text}", now)
        return int(template_id)

    def review_template(
        self,
        template_id: int,
        status: TemplateStatus,
        note: str | None,
        now: datetime,
        reviewer: str | None = None,
    ) -> TemplateRecord:
        reviewer = reviewer or actors.current()
        with writing(self.engine) as conn:
            changed = conn.execute(
                t.templates.update()
                .where(t.templates.c.id == template_id)
                .values(status=status.value, reviewer=reviewer, note=note, reviewed_at=now)
            )
            if changed.rowcount != 1:
                raise errors.NotFound(
                    f"no template #{template_id}; `smsgate template list` shows them"
                )
            record_change(conn, f"template.{status.value}", f"#{template_id}", note, now, reviewer)
        return self.templates(template_id=template_id)[0]

    def templates(
        self,
        status: TemplateStatus | None = None,
        username: str | None = None,
        template_id: int | None = None,
    ) -> list[TemplateRecord]:
        query = sa.select(t.templates, t.accounts.c.username).join(
            t.accounts, t.accounts.c.id == t.templates.c.account_id
        )
        if status is not None:
            query = query.where(t.templates.c.status == status.value)
        if username is not None:
            query = query.where(t.accounts.c.username == username)
        if template_id is not None:
            query = query.where(t.templates.c.id == template_id)
        with reading(self.engine) as conn:
            rows = conn.execute(query.order_by(t.templates.c.id)).mappings().all()
        return [
            TemplateRecord(
                r["id"],
                r["username"],
                r["account_id"],
                r["product_id"],
                r["text"],
                TemplateStatus(r["status"]),
                r["reviewer"],
                r["note"],
                r["created_at"],
            )
            for r in rows
        ]

    def set_upstream_template(
        self, template_id: int, carrier: str, code: str | None, now: datetime
    ) -> TemplateRecord:
        """Map (or with ``code=None`` unmap) a template to a code at an upstream carrier."""
        with writing(self.engine) as conn:
            if (
                conn.execute(
                    sa.select(t.templates.c.id).where(t.templates.c.id == template_id)
                ).first()
                is None
            ):
                raise errors.NotFound(
                    f"no template #{template_id}; `smsgate template list` shows them"
                )
            key = (t.upstream_templates.c.template_id == template_id) & (
                t.upstream_templates.c.carrier == carrier
            )
            conn.execute(t.upstream_templates.delete().where(key))
            if code is not None:
                conn.execute(
                    t.upstream_templates.insert().values(
                        template_id=template_id, carrier=carrier, code=code, created_at=now
                    )
                )
            detail = f"{carrier} -> {code}" if code is not None else f"{carrier} removed"
            record_change(conn, "template.upstream", f"#{template_id}", detail, now)
        return self.templates(template_id=template_id)[0]

    def upstream_templates(self) -> list[tuple[int, str, str]]:
        """Every mapping: (template id, carrier, provider's code)."""
        u = t.upstream_templates
        with reading(self.engine) as conn:
            rows = conn.execute(
                sa.select(u.c.template_id, u.c.carrier, u.c.code).order_by(
                    u.c.carrier, u.c.template_id
                )
            ).all()
        return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    def template_carriers(self) -> frozenset[str]:
        """The enabled carriers of a template-based kind (Alibaba Cloud, Tencent Cloud)."""
        c = t.carriers
        with reading(self.engine) as conn:
            names = conn.execute(
                sa.select(c.c.name).where(c.c.kind.in_(sorted(TEMPLATE_KINDS)), c.c.enabled)
            ).scalars()
            return frozenset(str(name) for name in names)

    # -- opt-outs -------------------------------------------------------------------

    def add_optout(self, account_id: int, phone: str, now: datetime) -> bool:
        with writing(self.engine) as conn:
            exists = conn.execute(
                sa.select(t.optouts.c.phone).where(
                    t.optouts.c.account_id == account_id, t.optouts.c.phone == phone
                )
            ).first()
            if exists:
                return False
            conn.execute(
                t.optouts.insert().values(account_id=account_id, phone=phone, created_at=now)
            )
            record_change(conn, "optout.add", str(account_id), phone, now)
        return True

    def remove_optout(self, username: str, phone: str, now: datetime) -> bool:
        with writing(self.engine) as conn:
            account_id = account_id_of(conn, username)
            removed = conn.execute(
                t.optouts.delete().where(
                    t.optouts.c.account_id == account_id, t.optouts.c.phone == phone
                )
            )
            record_change(conn, "optout.remove", username, phone, now)
        return removed.rowcount > 0

    def optouts(self) -> dict[int, frozenset[str]]:
        grouped: defaultdict[int, set[str]] = defaultdict(set)
        with reading(self.engine) as conn:
            for account_id, phone in conn.execute(
                sa.select(t.optouts.c.account_id, t.optouts.c.phone)
            ):
                grouped[int(account_id)].add(phone)
        return {k: frozenset(v) for k, v in grouped.items()}

    # -- frequency caps -------------------------------------------------------------

    def set_account_limits(
        self, username: str, values: dict[str, int | None], now: datetime
    ) -> None:
        with writing(self.engine) as conn:
            account_id = account_id_of(conn, username)
            _upsert(conn, t.account_limits, t.account_limits.c.account_id, account_id, values)
            record_change(conn, "limits.account", username, _describe(values), now)

    def set_product_limits(
        self, product_id: str, values: dict[str, int | None], now: datetime
    ) -> None:
        with writing(self.engine) as conn:
            if (
                conn.execute(
                    sa.select(t.products.c.id).where(t.products.c.id == product_id)
                ).first()
                is None
            ):
                raise errors.NotFound(
                    f"no product {product_id!r}; `smsgate product list` shows them"
                )
            _upsert(conn, t.product_limits, t.product_limits.c.product_id, product_id, values)
            record_change(conn, "limits.product", product_id, _describe(values), now)

    def account_limits(self) -> dict[int, dict[str, int | None]]:
        with reading(self.engine) as conn:
            rows = conn.execute(sa.select(t.account_limits)).mappings().all()
        return {int(r["account_id"]): {k: r[k] for k in (*LIMIT_FIELDS, "daily_cap")} for r in rows}

    def product_limits(self) -> dict[str, dict[str, int | None]]:
        with reading(self.engine) as conn:
            rows = conn.execute(sa.select(t.product_limits)).mappings().all()
        return {r["product_id"]: {k: r[k] for k in LIMIT_FIELDS} for r in rows}


def _upsert(
    conn: sa.Connection,
    table: sa.Table,
    key: sa.Column[object],
    key_value: object,
    values: dict[str, int | None],
) -> None:
    if conn.execute(sa.select(key).where(key == key_value)).first() is None:
        conn.execute(table.insert().values({key.name: key_value, **values}))
    else:
        conn.execute(table.update().where(key == key_value).values(values))


def _describe(values: dict[str, int | None]) -> str:
    return ", ".join(f"{k}={'default' if v is None else v}" for k, v in values.items())
