"""Security guard: IP blocks and security events (app/guard).

Revision ID: 0003_security_guard
Revises: 0002_token_revocation
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003_security_guard"
down_revision = "0002_token_revocation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "security_blocks",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("network", sa.String(length=49), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifted_by", sa.String(length=64), nullable=True),
        sa.CheckConstraint("source IN ('manual', 'auto')", name="security_blocks_source_valid"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_security_blocks_expires_at", "security_blocks", ["expires_at"])
    op.create_table(
        "security_events",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column("client_ip", sa.String(length=45), nullable=True),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("route", sa.String(length=200), nullable=True),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("count", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "detail", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_security_events_at", "security_events", ["at"])
    op.create_index("ix_security_events_kind_at", "security_events", ["kind", "at"])


def downgrade() -> None:
    op.drop_table("security_events")
    op.drop_table("security_blocks")
