"""Calls, their steps, safety events, recordings and callback requests.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
OPEN_ONLY = sa.text("status = 'open'")


def upgrade():
    op.create_table(
        "callbacks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("language", sa.String(5), nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("requested_by_caller", sa.Boolean(), nullable=False),
        sa.Column("missed", sa.Boolean(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("answers", JSON, nullable=False),
        sa.Column("preferred_window", sa.String(12), nullable=True),
        sa.Column("voicemail_ok", sa.Boolean(), nullable=True),
        sa.Column("recording_sid", sa.String(64), nullable=True),
        sa.Column("call_sid", sa.String(64), nullable=False),
        sa.Column("prompts_version", sa.String(40), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callbacks")),
    )
    op.create_index("ix_callbacks_phone", "callbacks", ["phone"])
    op.create_index("ix_callbacks_queue", "callbacks", ["status", "priority", "created_at"])
    op.create_index("uq_callbacks_open_phone", "callbacks", ["phone"], unique=True,
                    sqlite_where=OPEN_ONLY, postgresql_where=OPEN_ONLY)

    op.create_table(
        "calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_sid", sa.String(64), nullable=False),
        sa.Column("caller", sa.String(20), nullable=True),
        sa.Column("caller_id_status", sa.String(12), nullable=False),
        sa.Column("language", sa.String(5), nullable=True),
        sa.Column("prompts_version", sa.String(40), nullable=False),
        sa.Column("started_at", UTC, nullable=False),
        sa.Column("ended_at", UTC, nullable=True),
        sa.Column("twilio_status", sa.String(20), nullable=True),
        sa.Column("duration_seconds", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(30), nullable=True),
        sa.Column("transfer_accepted_at", UTC, nullable=True),
        sa.Column("callback_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["callback_id"], ["callbacks.id"], name=op.f("fk_calls_callback_id_callbacks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
        sa.UniqueConstraint("call_sid", name=op.f("uq_calls_call_sid")),
    )
    op.create_index(op.f("ix_calls_callback_id"), "calls", ["callback_id"])
    op.create_index(op.f("ix_calls_caller"), "calls", ["caller"])
    op.create_index(op.f("ix_calls_started_at"), "calls", ["started_at"])

    op.create_table(
        "call_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_sid", sa.String(64), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("node", sa.String(64), nullable=False),
        sa.Column("phase", sa.String(20), nullable=False),
        sa.Column("choice", sa.String(40), nullable=False),
        sa.Column("language", sa.String(5), nullable=True),
        sa.Column("field", sa.String(64), nullable=True),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("presented", sa.String(80), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_events")),
        sa.UniqueConstraint("call_sid", "step", name="uq_call_events_call_sid_step"),
    )

    op.create_table(
        "safety_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_sid", sa.String(64), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("node", sa.String(64), nullable=False),
        sa.Column("language", sa.String(5), nullable=True),
        sa.Column("caller", sa.String(20), nullable=True),
        sa.Column("dialed", sa.String(20), nullable=False),
        sa.Column("dial_status", sa.String(20), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_safety_events")),
        sa.UniqueConstraint("call_sid", "step", name="uq_safety_events_call_sid_step"),
    )
    op.create_index(op.f("ix_safety_events_at"), "safety_events", ["at"])

    op.create_table(
        "recordings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recording_sid", sa.String(64), nullable=False),
        sa.Column("call_sid", sa.String(64), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("duration_seconds", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recordings")),
        sa.UniqueConstraint("recording_sid", name=op.f("uq_recordings_recording_sid")),
    )
    op.create_index(op.f("ix_recordings_call_sid"), "recordings", ["call_sid"])


def downgrade():
    op.drop_table("recordings")
    op.drop_table("safety_events")
    op.drop_table("call_events")
    op.drop_table("calls")
    op.drop_table("callbacks")
