"""The audit log: who looked at or changed what, when.

Append-only: migration 0002 adds database triggers that refuse UPDATE and DELETE.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from voiceline.models.base import Base, now_utc

# Actions recorded. Each row names the actor (a staff account, or "cli:<email>") and,
# where there is one, the callback request concerned.
ACTIONS = (
    "sign_in", "sign_in_failed", "sign_out",
    "view_callback", "play_recording", "play_recording_failed", "claim", "release", "attempt", "note", "reopen",
    "list_callbacks", "list_calls", "finish_stale_calls", "retention_purge", "retention_erase", "export", "view_safety_events", "view_audit",
    "staff_add", "staff_disable", "staff_enable", "staff_password_reset",
)


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=now_utc, index=True)
    staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"), index=True)
    actor: Mapped[str] = mapped_column(sa.String(300))  # email at the time, or "cli"
    action: Mapped[str] = mapped_column(sa.String(40))
    callback_id: Mapped[int | None] = mapped_column(sa.ForeignKey("callbacks.id"), index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    address: Mapped[str | None] = mapped_column(sa.String(64))

