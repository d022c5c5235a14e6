"""A step's outcome on its own row, folded into the call by the status callback.

Revision ID: 0003_call_event_outcome
Revises: 0002_staff_queue
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_call_event_outcome"
down_revision = "0002_staff_queue"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("call_events", sa.Column("outcome", sa.String(30), nullable=True))


def downgrade():
    with op.batch_alter_table("call_events") as batch:
        batch.drop_column("outcome")
