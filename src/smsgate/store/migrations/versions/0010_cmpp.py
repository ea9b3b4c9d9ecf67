"""cmpp: an account's CMPP login, and the status reports and replies owed to CMPP customers

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 05:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Plain ADD COLUMN (no table copy): on SQLite, recreating `accounts` would cascade.
    op.add_column("accounts", sa.Column("cmpp_sp_id", sa.String(length=6), nullable=True))
    op.add_column("accounts", sa.Column("cmpp_secret", sa.String(length=64), nullable=True))
    op.create_index(op.f("uq_accounts_cmpp_sp_id"), "accounts", ["cmpp_sp_id"], unique=True)
    op.create_table(
        "cmpp_reports",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("msg_id", sa.String(length=16), nullable=False),
        sa.Column("message_id", _ID, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_cmpp_reports_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_cmpp_reports_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cmpp_reports")),
    )
    op.create_index(op.f("ix_cmpp_reports_account_id_id"), "cmpp_reports", ["account_id", "id"])
    op.create_table(
        "cmpp_replies",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("mo_id", _ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_cmpp_replies_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["mo_id"], ["mo.id"], name=op.f("fk_cmpp_replies_mo_id_mo"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cmpp_replies")),
    )
    op.create_index(op.f("ix_cmpp_replies_account_id_id"), "cmpp_replies", ["account_id", "id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_cmpp_replies_account_id_id"), table_name="cmpp_replies")
    op.drop_table("cmpp_replies")
    op.drop_index(op.f("ix_cmpp_reports_account_id_id"), table_name="cmpp_reports")
    op.drop_table("cmpp_reports")
    op.drop_index(op.f("uq_accounts_cmpp_sp_id"), table_name="accounts")
    op.drop_column("accounts", "cmpp_secret")
    op.drop_column("accounts", "cmpp_sp_id")
