"""The initial schema: users, bags, scans, bills, bill_bags.

Revision ID: 0001
Revises:
"""

from alembic import op

from app.models import Base

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The first revision is the model as it stands; later revisions are explicit ALTERs.
    Base.metadata.create_all(op.get_bind())


def downgrade() -> None:
    Base.metadata.drop_all(op.get_bind())
