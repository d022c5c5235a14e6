"""When a callback request's last call attempt was logged: Next waits RETRY_AFTER_MINUTES after it.

Revision ID: 0005_callback_last_attempt_at
Revises: 0004_retention
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_callback_last_attempt_at"
down_revision = "0004_retention"
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)

# The newest attempt of each request that has any (both databases keep `at` in a form whose
# max is the latest: timestamptz on PostgreSQL, ISO text in UTC on SQLite).
BACKFILL = """
UPDATE callbacks SET last_attempt_at = (
    SELECT max(callback_attempts.at) FROM callback_attempts WHERE callback_attempts.callback_id = callbacks.id
)
WHERE id IN (SELECT callback_id FROM callback_attempts)
"""


def upgrade():
    op.add_column("callbacks", sa.Column("last_attempt_at", UTC, nullable=True))
    op.execute(BACKFILL)


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        # SQLite 3.35+ drops an unindexed column in place; batch mode would rebuild the table
        # (and its partial unique index) for nothing.
        op.execute("ALTER TABLE callbacks DROP COLUMN last_attempt_at")
    else:
        op.drop_column("callbacks", "last_attempt_at")
