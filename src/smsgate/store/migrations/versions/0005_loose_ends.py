"""loose ends: report timeout index, one refund per message, compatibility settings

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 23:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ONE_REFUND = "kind = 'refund' AND ref LIKE 'message:%'"
_AWAITING = "state = 'submitted'"


def upgrade() -> None:
    # Plain ADD COLUMN (no table copy): on SQLite, recreating `accounts` would cascade.
    for name in ("provider_codes", "unknown_g_default"):
        op.add_column(
            "accounts", sa.Column(name, sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_index(
        "ledger_one_refund_per_message",
        "ledger",
        ["ref"],
        unique=True,
        sqlite_where=sa.text(_ONE_REFUND),
        postgresql_where=sa.text(_ONE_REFUND),
    )
    op.create_index(
        "messages_awaiting_report",
        "messages",
        ["submitted_at"],
        sqlite_where=sa.text(_AWAITING),
        postgresql_where=sa.text(_AWAITING),
    )


def downgrade() -> None:
    op.drop_index("messages_awaiting_report", table_name="messages")
    op.drop_index("ledger_one_refund_per_message", table_name="ledger")
    for name in ("unknown_g_default", "provider_codes"):
        op.drop_column("accounts", name)
