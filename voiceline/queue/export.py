"""Callback requests as plain dicts: for `callbacks list --json` and the staff CSV export."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from voiceline.models import CallbackRequest, Recording, StaffUser


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def callback_dicts(session: Session, requests: Sequence[CallbackRequest]) -> list[dict[str, Any]]:
    sids = {r.recording_sid for r in requests if r.recording_sid}
    urls: dict[str, str | None] = {}
    if sids:
        urls = dict(session.execute(
            sa.select(Recording.recording_sid, Recording.url).where(Recording.recording_sid.in_(sids))
        ).all())
    staff_ids = {r.claimed_by_id for r in requests if r.claimed_by_id}
    emails: dict[int, str] = {}
    if staff_ids:
        emails = dict(session.execute(
            sa.select(StaffUser.id, StaffUser.email).where(StaffUser.id.in_(staff_ids))).all())
    return [
        {
            "id": r.id,
            "phone": r.phone,
            "status": r.status,
            "language": r.language,
            "reason": r.reason,
            "call_sid": r.call_sid,
            "created_at": _iso(r.created_at),
            "updated_at": _iso(r.updated_at),
            "preferred_window": r.preferred_window,
            "voicemail_ok": r.voicemail_ok,
            "requested_by_caller": r.requested_by_caller,
            "missed": r.missed,
            "priority": r.priority,
            "answers": dict(r.answers or {}),
            "recording_sid": r.recording_sid,
            "recording_url": urls.get(r.recording_sid) if r.recording_sid else None,
            "prompts_version": r.prompts_version,
            "claimed_by": emails.get(r.claimed_by_id) if r.claimed_by_id else None,
            "claimed_at": _iso(r.claimed_at),
            "attempts": r.attempts,
            "closed_at": _iso(r.closed_at),
            "outcome": r.outcome,
            "erased_at": _iso(r.erased_at),  # by the retention schedule: phone and answers are empty
        }
        for r in requests
    ]
