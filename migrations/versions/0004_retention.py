"""When the retention schedule erased a callback request's or a call's health information.

Revision ID: 0004_retention
Revises: 0003_call_event_outcome
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_retention"
down_revision = "0003_call_event_outcome"
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)


def upgrade():
    op.add_column("callbacks", sa.Column("erased_at", UTC, nullable=True))
    op.add_column("calls", sa.Column("erased_at", UTC, nullable=True))


def downgrade():
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("erased_at")
    with op.batch_alter_table("callbacks") as batch:
        batch.drop_column("erased_at")
