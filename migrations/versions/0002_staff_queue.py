"""Staff accounts, sign-in throttle, working the queue (claims, attempts, notes), audit log.

Revision ID: 0002_staff_queue
Revises: 0001_initial
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002_staff_queue"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

# The audit log refuses UPDATE and DELETE (kept in step with voiceline/models/audit.py).
POSTGRES_APPEND_ONLY = """
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
"""
SQLITE_APPEND_ONLY = (
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
)


def upgrade():
    op.create_table(
        "staff_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("session_version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("last_sign_in_at", UTC, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_users")),
        sa.UniqueConstraint("email", name=op.f("uq_staff_users_email")),
    )
    op.create_table(
        "sign_in_failures",
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", UTC, nullable=False),
        sa.Column("blocked_until", UTC, nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_sign_in_failures")),
    )

    sqlite = op.get_bind().dialect.name == "sqlite"
    for column in ("claimed_by_id", "closed_by_id"):
        if sqlite:
            # SQLite cannot add a constraint to a table, but can add a column that references
            # another (batch mode would rebuild the table and risk its partial unique index).
            op.execute(f"ALTER TABLE callbacks ADD COLUMN {column} INTEGER REFERENCES staff_users (id)")
        else:
            op.add_column("callbacks", sa.Column(column, sa.Integer(), nullable=True))
            op.create_foreign_key(op.f(f"fk_callbacks_{column}_staff_users"), "callbacks", "staff_users",
                                  [column], ["id"])
    op.add_column("callbacks", sa.Column("claimed_at", UTC, nullable=True))
    op.add_column("callbacks", sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("callbacks", sa.Column("unsuccessful_attempts", sa.Integer(), nullable=False,
                                         server_default="0"))
    op.add_column("callbacks", sa.Column("closed_at", UTC, nullable=True))
    op.add_column("callbacks", sa.Column("outcome", sa.String(30), nullable=True))
    op.create_index("ix_callbacks_claimed_by_id", "callbacks", ["claimed_by_id"])
    op.create_index("ix_callbacks_closed_at", "callbacks", ["closed_at"])

    op.create_table(
        "callback_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("callback_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("outcome", sa.String(30), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["callback_id"], ["callbacks.id"], name=op.f("fk_callback_attempts_callback_id_callbacks")),
        sa.ForeignKeyConstraint(["staff_id"], ["staff_users.id"], name=op.f("fk_callback_attempts_staff_id_staff_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_attempts")),
    )
    op.create_index(op.f("ix_callback_attempts_callback_id"), "callback_attempts", ["callback_id"])
    op.create_table(
        "callback_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("callback_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["callback_id"], ["callbacks.id"], name=op.f("fk_callback_notes_callback_id_callbacks")),
        sa.ForeignKeyConstraint(["staff_id"], ["staff_users.id"], name=op.f("fk_callback_notes_staff_id_staff_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_notes")),
    )
    op.create_index(op.f("ix_callback_notes_callback_id"), "callback_notes", ["callback_id"])

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(300), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("callback_id", sa.Integer(), nullable=True),
        sa.Column("detail", JSON, nullable=False),
        sa.Column("address", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(["callback_id"], ["callbacks.id"], name=op.f("fk_audit_log_callback_id_callbacks")),
        sa.ForeignKeyConstraint(["staff_id"], ["staff_users.id"], name=op.f("fk_audit_log_staff_id_staff_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"])
    op.create_index(op.f("ix_audit_log_callback_id"), "audit_log", ["callback_id"])
    op.create_index(op.f("ix_audit_log_staff_id"), "audit_log", ["staff_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRES_APPEND_ONLY)
    else:
        for statement in SQLITE_APPEND_ONLY:
            op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    op.drop_table("audit_log")
    op.drop_table("callback_notes")
    op.drop_table("callback_attempts")
    with op.batch_alter_table("callbacks") as batch:
        batch.drop_index("ix_callbacks_closed_at")
        batch.drop_index("ix_callbacks_claimed_by_id")
        for column in ("closed_by_id", "outcome", "closed_at", "unsuccessful_attempts", "attempts",
                       "claimed_at", "claimed_by_id"):
            batch.drop_column(column)
    op.drop_table("sign_in_failures")
    op.drop_table("staff_users")
