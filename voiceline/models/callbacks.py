"""The callback queue: one open request per phone number."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from voiceline.models.base import Base, now_utc
from voiceline.models.staff import StaffUser

OPEN, CLOSED = "open", "closed"
STATUSES = (OPEN, CLOSED)
# Which rows the one-open-request-per-phone index covers; an INSERT ... ON CONFLICT names it
# to find that index (intake.add_or_merge).
OPEN_ONLY = sa.text("status = 'open'")

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
            sqlite_where=OPEN_ONLY, postgresql_where=OPEN_ONLY,
        ),
        sa.Index("ix_callbacks_queue", "status", "priority", "created_at"),
        sa.Index("ix_callbacks_phone", "phone"),
        sa.Index("ix_callbacks_claimed_by_id", "claimed_by_id"),
        sa.Index("ix_callbacks_closed_at", "closed_at"),
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

    # Working the queue. A claim is one coordinator's hold on the item; it lapses once
    # claimed_at is older than CLAIM_TIMEOUT_MINUTES (any activity by the holder renews it).
    claimed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    claimed_at: Mapped[dt.datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    unsuccessful_attempts: Mapped[int] = mapped_column(default=0)  # since created or reopened
    # When the last attempt was logged: Next leaves the request alone for RETRY_AFTER_MINUTES
    # after it, so a caller is not rung twice in a minute.
    last_attempt_at: Mapped[dt.datetime | None]
    closed_at: Mapped[dt.datetime | None]
    outcome: Mapped[str | None] = mapped_column(sa.String(30))
    closed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    # Set when the retention schedule froze it to erase it, and kept once its number, answers,
    # message and notes are erased (voiceline/retention.py); the row stays for the audit log
    # and the counts. A frozen request takes no changes.
    erased_at: Mapped[dt.datetime | None]

    claimed_by: Mapped[StaffUser | None] = relationship(foreign_keys=[claimed_by_id], lazy="raise")

    @property
    def erased(self) -> bool:
        """Its caller's data is gone: an erase empties the number with the rest, in one transaction."""
        return self.erased_at is not None and not self.phone

    @property
    def being_erased(self) -> bool:
        """Frozen by a purge that is deleting its messages: still holds its data, takes no changes."""
        return self.erased_at is not None and bool(self.phone)


class CallbackAttempt(Base):
    """One try at calling the person back, and how it went."""

    __tablename__ = "callback_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    callback_id: Mapped[int] = mapped_column(sa.ForeignKey("callbacks.id"), index=True)
    staff_id: Mapped[int] = mapped_column(sa.ForeignKey("staff_users.id"))
    at: Mapped[dt.datetime] = mapped_column(default=now_utc)
    outcome: Mapped[str] = mapped_column(sa.String(30))
    note: Mapped[str | None] = mapped_column(sa.Text)

    staff: Mapped[StaffUser] = relationship(lazy="raise")


class CallbackNote(Base):
    __tablename__ = "callback_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    callback_id: Mapped[int] = mapped_column(sa.ForeignKey("callbacks.id"), index=True)
    staff_id: Mapped[int] = mapped_column(sa.ForeignKey("staff_users.id"))
    at: Mapped[dt.datetime] = mapped_column(default=now_utc)
    text: Mapped[str] = mapped_column(sa.Text)

    staff: Mapped[StaffUser] = relationship(lazy="raise")
