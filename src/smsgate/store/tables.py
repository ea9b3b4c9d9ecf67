"""The schema, declared once with SQLAlchemy Core.

Migrations in ``store/migrations`` build the database; a test checks that what they
build equals what is declared here (Alembic's autogenerate diff is empty).
Money is integer units (条). Timestamps are UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit id.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on SQLite (which stores text) and PostgreSQL alike."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use aware UTC datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _id() -> sa.Column[int]:
    return sa.Column("id", BigId, primary_key=True, autoincrement=True)


def _account_fk(*, cascade: bool = True, **kw: Any) -> sa.Column[int]:
    fk = sa.ForeignKey("accounts.id", ondelete="CASCADE" if cascade else None)
    return sa.Column("account_id", BigId, fk, nullable=False, **kw)


accounts = sa.Table(
    "accounts",
    metadata,
    _id(),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="active"),
    sa.Column("expires_at", UTCDateTime(), nullable=True),
    sa.Column("mo_url", sa.String(2000), nullable=True),
    sa.Column("ext_code", sa.String(6), nullable=True, unique=True),
    # Compatibility for clients that cannot change: answer only the provider's documented
    # codes (spec: protocol.md), and send an unknown product id `g` to the default product.
    sa.Column("provider_codes", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("unknown_g_default", sa.Boolean(), nullable=False, server_default=sa.false()),
    # CMPP server login: SP code and shared secret (the authenticator is an MD5 over it).
    sa.Column("cmpp_sp_id", sa.String(6), nullable=True),
    sa.Column("cmpp_secret", sa.String(64), nullable=True),
    # balance and sent are the running sums of the ledger, kept beside it in the same
    # transaction so that "never negative" is a constraint the database enforces.
    sa.Column("balance", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("sent", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.CheckConstraint("balance >= 0", name="balance_not_negative"),
    sa.CheckConstraint("sent >= 0", name="sent_not_negative"),
    sa.CheckConstraint("status IN ('active', 'disabled')", name="status_known"),
    # An index, not a constraint: SQLite adds a column to an existing table only without one.
    sa.Index("uq_accounts_cmpp_sp_id", "cmpp_sp_id", unique=True),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    _id(),
    _account_fk(index=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("hint", sa.String(8), nullable=False),  # first characters, to tell keys apart
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
)

ip_allow = sa.Table(
    "ip_allow",
    metadata,
    _account_fk(primary_key=True),
    sa.Column("cidr", sa.String(64), primary_key=True),
)

products = sa.Table(
    "products",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("price", sa.Integer(), nullable=False, server_default="1"),
    # The route: carrier names in order of preference, comma-separated (failover).
    sa.Column("carrier", sa.String(400), nullable=False, server_default="simulator"),
    sa.Column("template_required", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("private", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.CheckConstraint("price >= 1", name="price_positive"),
)

account_products = sa.Table(
    "account_products",
    metadata,
    _account_fk(primary_key=True),
    sa.Column(
        "product_id",
        sa.String(32),
        sa.ForeignKey("products.id", ondelete="CASCADE"),
        primary_key=True,
    ),
)

signatures = sa.Table(
    "signatures",
    metadata,
    _account_fk(primary_key=True),
    sa.Column("text", sa.String(32), primary_key=True),  # without the 【】
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

words = sa.Table(
    "words",
    metadata,
    _id(),
    sa.Column("word", sa.String(100), nullable=False, unique=True),
    sa.Column("category", sa.String(32), nullable=False, server_default="general"),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

ledger = sa.Table(
    "ledger",
    metadata,
    _id(),
    _account_fk(cascade=False, index=True),
    sa.Column("delta", sa.BigInteger(), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("ref", sa.String(64), nullable=True),  # what it is for: a batch id, a ticket...
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('topup', 'charge', 'refund', 'adjustment')", name="kind_known"),
    # A message is refunded at most once, whoever refunds it (failure, expiry, settling).
    sa.Index(
        "ledger_one_refund_per_message",
        "ref",
        unique=True,
        sqlite_where=sa.text("kind = 'refund' AND ref LIKE 'message:%'"),
        postgresql_where=sa.text("kind = 'refund' AND ref LIKE 'message:%'"),
    ),
)

audit = sa.Table(
    "audit",
    metadata,
    _id(),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("detail", sa.Text(), nullable=True),
    sa.Column("at", UTCDateTime(), nullable=False),
)

# One row whose counter every admin change bumps, so that running servers notice it.
config_rev = sa.Table(
    "config_rev",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("rev", sa.BigInteger(), nullable=False),
)

# -- the send path ----------------------------------------------------------------------


# Per-number frequency caps; NULL means "not set here" (settings give the default).
def _frequency_columns() -> list[sa.Column[int]]:
    return [
        sa.Column("freq_per_minute", sa.Integer(), nullable=True),
        sa.Column("freq_per_hour", sa.Integer(), nullable=True),
        sa.Column("freq_per_day", sa.Integer(), nullable=True),
    ]


account_limits = sa.Table(
    "account_limits",
    metadata,
    _account_fk(primary_key=True),
    *_frequency_columns(),
    sa.Column("daily_cap", sa.Integer(), nullable=True),  # messages per account per day
)

product_limits = sa.Table(
    "product_limits",
    metadata,
    sa.Column(
        "product_id",
        sa.String(32),
        sa.ForeignKey("products.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    *_frequency_columns(),
)

templates = sa.Table(
    "templates",
    metadata,
    _id(),
    _account_fk(index=True),
    sa.Column("product_id", sa.String(32), sa.ForeignKey("products.id"), nullable=False),
    sa.Column("text", sa.String(500), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("reviewer", sa.String(64), nullable=True),
    sa.Column("note", sa.String(200), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("reviewed_at", UTCDateTime(), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="status_known"),
)

# An approved template's code at a template-based upstream provider (Alibaba/Tencent Cloud).
upstream_templates = sa.Table(
    "upstream_templates",
    metadata,
    sa.Column(
        "template_id",
        BigId,
        sa.ForeignKey("templates.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("carrier", sa.String(64), primary_key=True),
    sa.Column("code", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

optouts = sa.Table(
    "optouts",
    metadata,
    _account_fk(primary_key=True),
    sa.Column("phone", sa.String(20), primary_key=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

# One accepted request (the unit that is charged and answered `0`).
batches = sa.Table(
    "batches",
    metadata,
    _id(),
    _account_fk(cascade=False, index=True),
    sa.Column("product_id", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),  # sms, intl, voice
    sa.Column("numbers", sa.Integer(), nullable=False),
    sa.Column("units", sa.Integer(), nullable=False),  # per message
    sa.Column("cost", sa.BigInteger(), nullable=False),
    sa.Column("client_ip", sa.String(64), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

messages = sa.Table(
    "messages",
    metadata,
    _id(),
    sa.Column("batch_id", BigId, sa.ForeignKey("batches.id"), nullable=False, index=True),
    _account_fk(cascade=False),
    sa.Column("product_id", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("phone", sa.String(20), nullable=False),
    sa.Column("content", sa.Text(), nullable=False),
    sa.Column("units", sa.Integer(), nullable=False),
    sa.Column("cost", sa.Integer(), nullable=False),  # units x price, refunded on failure
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("carrier", sa.String(64), nullable=False),
    sa.Column("carrier_ref", sa.String(64), nullable=True),
    sa.Column("error", sa.String(200), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("submitted_at", UTCDateTime(), nullable=True),
    sa.Column("done_at", UTCDateTime(), nullable=True),
    sa.Index(None, "account_id", "id"),
    sa.Index(None, "phone", "created_at"),
    sa.Index(None, "carrier", "carrier_ref"),
    sa.Index(None, "created_at"),
    # The report timeout's scan: only the messages waiting for a delivery report.
    sa.Index(
        "messages_awaiting_report",
        "submitted_at",
        sqlite_where=sa.text("state = 'submitted'"),
        postgresql_where=sa.text("state = 'submitted'"),
    ),
)

# The CMPP server's status reports still owed to a customer: one row per message and per
# Msg_Id the customer was given for it (a long message has one per part). The message's
# state says when the report is due; the row goes when the customer answers DELIVER_RESP,
# so a report waits here, durably, while the customer is not connected.
cmpp_reports = sa.Table(
    "cmpp_reports",
    metadata,
    _id(),
    _account_fk(),
    sa.Column("msg_id", sa.String(16), nullable=False),  # 8 bytes as hex (docs/cmpp.md)
    sa.Column(
        "message_id", BigId, sa.ForeignKey("messages.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index(None, "account_id", "id"),
)

# User replies owed to a CMPP customer as DELIVERs: written with the reply (store/inbound.py)
# when its account has a CMPP login, deleted when every part's DELIVER_RESP is back.
cmpp_replies = sa.Table(
    "cmpp_replies",
    metadata,
    _id(),
    _account_fk(),
    sa.Column("mo_id", BigId, sa.ForeignKey("mo.id", ondelete="CASCADE"), nullable=False),
    sa.Index(None, "account_id", "id"),
)

# The parts of a message a carrier took in several parts, each with its own reference
# and delivery report; the message settles when the last part has its report.
message_parts = sa.Table(
    "message_parts",
    metadata,
    sa.Column("message_id", BigId, sa.ForeignKey("messages.id"), primary_key=True),
    sa.Column("part", sa.Integer(), primary_key=True),  # 1-based, in sending order
    sa.Column("carrier", sa.String(64), nullable=False),
    sa.Column("carrier_ref", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=True),  # NULL until its report arrives
    sa.Column("error", sa.String(200), nullable=True),
    sa.Column("reported_at", UTCDateTime(), nullable=True),
    sa.Index(None, "carrier", "carrier_ref"),
)

# The queue the dispatcher claims from; a row leaves when its message is submitted.
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column(
        "message_id", BigId, sa.ForeignKey("messages.id"), primary_key=True, autoincrement=False
    ),
    sa.Column("available_at", UTCDateTime(), nullable=False, index=True),
    sa.Column("claimed_by", sa.String(40), nullable=True),
    sa.Column("claimed_at", UTCDateTime(), nullable=True),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
)

# -- replies (MO) and their push -------------------------------------------------------

# One user reply as a carrier handed it over. account_id is NULL while unmatched: the
# reply is kept (and shown to operators) even when no account can be found for it.
mo = sa.Table(
    "mo",
    metadata,
    _id(),
    sa.Column("account_id", BigId, sa.ForeignKey("accounts.id"), nullable=True),
    sa.Column("phone", sa.String(20), nullable=False),
    sa.Column("dest", sa.String(32), nullable=True),  # service number + extended code
    sa.Column("content", sa.Text(), nullable=False),
    sa.Column("carrier", sa.String(64), nullable=False),
    sa.Column("matched_by", sa.String(16), nullable=True),
    sa.Column("optout", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("received_at", UTCDateTime(), nullable=False),
    sa.Index(None, "account_id", "id"),
    sa.Index(None, "received_at"),
    sa.CheckConstraint("matched_by IN ('ext_code', 'recent')", name="matched_by_known"),
)

# The push of one matched reply: written with the mo row, before anything is attempted.
# A re-push starts a new series (attempts back to 0); earlier attempts stay as rows.
pushes = sa.Table(
    "pushes",
    metadata,
    sa.Column("mo_id", BigId, sa.ForeignKey("mo.id"), primary_key=True, autoincrement=False),
    _account_fk(cascade=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("series", sa.Integer(), nullable=False, server_default="1"),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),  # in this series
    sa.Column("first_attempt_at", UTCDateTime(), nullable=True),  # retries count from it
    sa.Column("next_at", UTCDateTime(), nullable=False),
    sa.Column("claimed_by", sa.String(40), nullable=True),
    sa.Column("claimed_at", UTCDateTime(), nullable=True),
    sa.Column("last_error", sa.String(200), nullable=True),
    sa.Column("done_at", UTCDateTime(), nullable=True),
    sa.Index(None, "state", "next_at"),
    sa.Index(None, "account_id"),
    sa.CheckConstraint("state IN ('pending', 'succeeded', 'failed')", name="state_known"),
)

# Every attempt, kept: the history operators read, and the failures the circuit counts.
push_attempts = sa.Table(
    "push_attempts",
    metadata,
    _id(),
    sa.Column("mo_id", BigId, sa.ForeignKey("mo.id"), nullable=False, index=True),
    _account_fk(cascade=False),
    sa.Column("series", sa.Integer(), nullable=False),
    sa.Column("attempt", sa.Integer(), nullable=False),  # 1-based, within the series
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),  # when the outcome was known
    sa.Column("ok", sa.Boolean(), nullable=False),
    sa.Column("status", sa.Integer(), nullable=True),  # NULL: timeout or connection error
    sa.Column("body", sa.String(200), nullable=True),
    sa.Column("error", sa.String(200), nullable=True),
    sa.Index(None, "account_id", "at"),
)

# The per-account circuit (core.push_policy.CircuitState), saved after each failure.
push_circuit = sa.Table(
    "push_circuit",
    metadata,
    _account_fk(primary_key=True),
    sa.Column("paused_until", UTCDateTime(), nullable=True),
    sa.Column("counted_since", UTCDateTime(), nullable=True),
)


# -- carriers ---------------------------------------------------------------------------

# A configured carrier link (SMPP, CMPP, an upstream HTTP provider, a simulator).
# ``options`` is the kind's settings as JSON, secrets included: the database is the
# configuration store; nothing that prints a carrier shows them.
carriers = sa.Table(
    "carriers",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("options", sa.Text(), nullable=False, server_default="{}"),
    sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

# What each running node last saw of each carrier (bound, window, errors...), written
# every few seconds, so that `smsgate carrier show` in another process can tell.
carrier_status = sa.Table(
    "carrier_status",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("node", sa.String(40), primary_key=True),
    sa.Column("status", sa.Text(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)
