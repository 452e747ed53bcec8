"""The initial schema: users, bags, scans, bills, bill_bags.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bags",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("qr_id", sa.String(length=64, collation="C"), nullable=False),
        sa.Column("bag_type", sa.String(length=8), nullable=False),
        sa.Column("parent_id", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="created", nullable=False),
        sa.Column("location", sa.String(length=128), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "bag_type = 'child' OR parent_id IS NULL", name="bags_parent_only_for_child"
        ),
        sa.CheckConstraint("bag_type IN ('parent', 'child')", name="bags_type_valid"),
        sa.CheckConstraint(
            "status IN ('created', 'in_transit', 'delivered', 'billed', 'lost')",
            name="bags_status_valid",
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["bags.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("qr_id"),
    )
    op.create_index("ix_bags_parent_id", "bags", ["parent_id"], unique=False)
    op.create_index("ix_bags_status_qr", "bags", ["status", "qr_id"], unique=False)
    op.create_index("ix_bags_type_qr", "bags", ["bag_type", "qr_id"], unique=False)
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("role IN ('admin', 'dispatcher', 'biller')", name="users_role_valid"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
    )
    op.create_table(
        "bills",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("bill_number", sa.String(length=64, collation="C"), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="open", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("status IN ('open', 'closed', 'cancelled')", name="bills_status_valid"),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("bill_number"),
    )
    op.create_index("ix_bills_created_at", "bills", ["created_at"], unique=False)
    op.create_table(
        "scans",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("bag_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("location", sa.String(length=128), nullable=False),
        sa.Column(
            "scanned_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["bag_id"],
            ["bags.id"],
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_scans_bag_time", "scans", ["bag_id", "scanned_at"], unique=False)
    op.create_index("ix_scans_scanned_at", "scans", ["scanned_at"], unique=False)
    op.create_table(
        "bill_bags",
        sa.Column("bill_id", sa.BigInteger(), nullable=False),
        sa.Column("bag_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["bag_id"],
            ["bags.id"],
        ),
        sa.ForeignKeyConstraint(["bill_id"], ["bills.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("bill_id", "bag_id"),
    )
    op.create_index("ix_bill_bags_bag_id", "bill_bags", ["bag_id"], unique=False)


def downgrade() -> None:
    for table in ("bill_bags", "scans", "bills", "users", "bags"):
        op.drop_table(table)
