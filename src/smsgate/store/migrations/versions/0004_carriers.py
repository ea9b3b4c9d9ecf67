"""carriers: configured carrier links, their live status, message parts, longer routes

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 23:59:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "carriers",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("options", sa.Text(), server_default="{}", nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_carriers")),
    )
    op.create_table(
        "carrier_status",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("node", sa.String(length=40), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", "node", name=op.f("pk_carrier_status")),
    )
    op.create_table(
        "message_parts",
        sa.Column("message_id", _BIG_ID, nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("carrier", sa.String(length=64), nullable=False),
        sa.Column("carrier_ref", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=True),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_message_parts_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("message_id", "part", name=op.f("pk_message_parts")),
    )
    with op.batch_alter_table("message_parts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_message_parts_carrier_carrier_ref"),
            ["carrier", "carrier_ref"],
            unique=False,
        )
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.alter_column(
            "carrier",
            existing_type=sa.String(length=64),
            type_=sa.String(length=400),
            existing_nullable=False,
            existing_server_default="simulator",
        )


def downgrade() -> None:
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.alter_column(
            "carrier",
            existing_type=sa.String(length=400),
            type_=sa.String(length=64),
            existing_nullable=False,
            existing_server_default="simulator",
        )
    with op.batch_alter_table("message_parts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_parts_carrier_carrier_ref"))
    op.drop_table("message_parts")
    op.drop_table("carrier_status")
    op.drop_table("carriers")
