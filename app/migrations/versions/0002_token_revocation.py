"""Token revocation: users.token_version and users.disabled_at.

Revision ID: 0002_token_revocation
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_token_revocation"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "users", sa.Column("token_version", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column("users", sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("users", "disabled_at")
    op.drop_column("users", "token_version")
