"""The callback queue: one open request per phone number."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from voiceline.models.base import Base, now_utc

OPEN, CLOSED = "open", "closed"
STATUSES = (OPEN, CLOSED)

# Lower sorts first in the queue: a caller who asked to be called beats a missed call.
PRIORITY_REQUESTED = 10
PRIORITY_MISSED = 20


class CallbackRequest(Base):
    __tablename__ = "callbacks"
    __table_args__ = (
        # One open request per phone: a repeat caller updates the open one. Enforced by the
        # database so two calls from the same phone at once cannot both insert.
        sa.Index(
            "uq_callbacks_open_phone", "phone", unique=True,
            sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"),
        ),
        sa.Index("ix_callbacks_queue", "status", "priority", "created_at"),
        sa.Index("ix_callbacks_phone", "phone"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(sa.String(20))
    status: Mapped[str] = mapped_column(sa.String(12), default=OPEN)
    language: Mapped[str] = mapped_column(sa.String(5))
    reason: Mapped[str] = mapped_column(sa.String(40))
    requested_by_caller: Mapped[bool] = mapped_column(default=True)
    missed: Mapped[bool] = mapped_column(default=False)
    priority: Mapped[int] = mapped_column(default=PRIORITY_REQUESTED)
    answers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    preferred_window: Mapped[str | None] = mapped_column(sa.String(12))
    voicemail_ok: Mapped[bool | None]
    recording_sid: Mapped[str | None] = mapped_column(sa.String(64))
    call_sid: Mapped[str] = mapped_column(sa.String(64))
    prompts_version: Mapped[str] = mapped_column(sa.String(40))
    created_at: Mapped[dt.datetime] = mapped_column(default=now_utc)
    updated_at: Mapped[dt.datetime] = mapped_column(default=now_utc, onupdate=now_utc)
