"""Recording who looked at or changed what. Every look at a caller's record goes through here."""

from __future__ import annotations

import datetime as dt
import getpass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from voiceline.models import AuditEntry, StaffUser, now_utc
from voiceline.models.audit import ACTIONS


def looked_recently(session: Session, action: str, staff: StaffUser, callback_id: int, since: dt.datetime) -> bool:
    """Whether `staff` has an entry `action` on this request since `since`."""
    return session.scalar(
        sa.select(AuditEntry.id).where(AuditEntry.action == action, AuditEntry.staff_id == staff.id,
                                       AuditEntry.callback_id == callback_id, AuditEntry.at >= since).limit(1)
    ) is not None


def system_user() -> str | None:
    """Who ran a CLI command, as the operating system knows them (a listing has no staff
    account behind it): kept in its audit entry. None where the system cannot tell."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return None


def record(session: Session, action: str, *, staff: StaffUser | None = None, actor: str | None = None,
           callback_id: int | None = None, detail: dict[str, Any] | None = None,
           address: str | None = None) -> AuditEntry:
    """Add one audit entry (flushed with the caller's transaction, never committed here)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    entry = AuditEntry(
        at=now_utc(),
        staff_id=staff.id if staff is not None else None,
        actor=actor or (staff.email if staff is not None else "system"),
        action=action,
        callback_id=callback_id,
        detail=detail or {},
        address=(address or "")[:64] or None,
    )
    session.add(entry)
    return entry
