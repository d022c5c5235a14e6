"""The retention schedule: erasing callers' health information once it is no longer needed.

`RETENTION_DAYS` after a callback request closes, `voiceline retention purge` erases what it
holds about the caller: the number, the answers, the voice messages (deleted at Twilio
first), the notes, and the calls that made it (their caller ID, every step, and the caller's
number on a crisis-line event). A call that left no request is erased the same number of days
after it ended. What is left is what the counts and the audit log need: the request's id,
reason, language, dates, outcome and tries; the call's times, outcome and language.

Open requests are never erased, however old. Each request (with its calls) is erased in one
transaction, after its messages are gone from Twilio; if Twilio cannot delete one, the
request keeps everything and the next run tries again. So a run that is stopped, or that
fails half-way, leaves nothing half-erased, and running it again is always safe.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from voiceline.models import Call, CallbackAttempt, CallbackNote, CallbackRequest, CallEvent, Recording, SafetyEvent
from voiceline.models.callbacks import OPEN
from voiceline.twilio_api import RecordingUnavailable

# Deletes one recording at Twilio, or raises RecordingUnavailable (twilio_api.delete_recording).
DeleteRecording = Callable[[str], None]


@dataclass(frozen=True)
class Unit:
    """What is erased together: a closed request with its calls, or a call that left none."""

    request_id: int | None
    call_sids: tuple[str, ...]
    recording_sids: tuple[str, ...]


@dataclass
class Purge:
    """What one run erased, or would erase (a dry run), and what it had to keep."""

    cutoff: dt.datetime
    requests: int = 0
    calls: int = 0
    recordings: int = 0
    kept: list[str] = field(default_factory=list)  # why a unit was kept this time

    def add(self, unit: Unit) -> None:
        self.requests += unit.request_id is not None
        self.calls += len(unit.call_sids)
        self.recordings += len(unit.recording_sids)


def cutoff(now: dt.datetime, days: int) -> dt.datetime:
    return now - dt.timedelta(days=days)


def _recordings_of(session: Session, call_sids: Sequence[str], extra: Sequence[str] = ()) -> tuple[str, ...]:
    rows = set(extra)
    if call_sids:
        rows |= set(session.scalars(sa.select(Recording.recording_sid).where(Recording.call_sid.in_(call_sids))))
    return tuple(sorted(rows))


def due(session: Session, before: dt.datetime) -> list[Unit]:
    """Closed requests closed before `before`, then calls without a request that ended before it."""
    units = []
    requests = session.execute(
        sa.select(CallbackRequest.id, CallbackRequest.call_sid, CallbackRequest.recording_sid)
        .where(CallbackRequest.status != OPEN, CallbackRequest.closed_at < before,
               CallbackRequest.erased_at.is_(None))
        .order_by(CallbackRequest.id)).all()
    for request_id, call_sid, recording_sid in requests:
        sids = sorted(set(session.scalars(sa.select(Call.call_sid).where(
            sa.or_(Call.callback_id == request_id, Call.call_sid == call_sid), Call.erased_at.is_(None)))))
        units.append(Unit(request_id, tuple(sids), _recordings_of(session, sids, [recording_sid] if recording_sid else [])))
    made_requests = sa.select(CallbackRequest.call_sid)  # such a call goes with its request
    lone = session.scalars(
        sa.select(Call.call_sid)
        .where(Call.callback_id.is_(None), Call.erased_at.is_(None),
               sa.func.coalesce(Call.ended_at, Call.started_at) < before,
               Call.call_sid.not_in(made_requests))
        .order_by(Call.started_at)).all()
    # Steps, crisis-line events and messages whose call's own row was never written (the
    # greeting's write lost to a database outage), by their own time.
    calls = sa.select(Call.call_sid)
    orphans: set[str] = set()
    for sid, at, *still_there in ((CallEvent.call_sid, CallEvent.at),
                                  (SafetyEvent.call_sid, SafetyEvent.at, SafetyEvent.caller.is_not(None)),
                                  (Recording.call_sid, Recording.created_at)):
        orphans.update(session.scalars(sa.select(sid).distinct().where(
            at < before, sid.not_in(calls), sid.not_in(made_requests), *still_there)))
    for call_sid in [*lone, *sorted(orphans)]:
        units.append(Unit(None, (call_sid,), _recordings_of(session, [call_sid])))
    return units


def erase(session: Session, unit: Unit, now: dt.datetime) -> bool:
    """Erase one unit in the session's transaction (the caller commits). False, with nothing
    changed, if its request was reopened or erased since `due` listed it."""
    if unit.request_id is not None:
        done = session.execute(
            sa.update(CallbackRequest)
            .where(CallbackRequest.id == unit.request_id, CallbackRequest.status != OPEN,
                   CallbackRequest.erased_at.is_(None))
            .values(phone="", answers={}, voicemail_ok=None, recording_sid=None, erased_at=now)
            .execution_options(synchronize_session=False))
        if done.rowcount != 1:
            return False
        session.execute(sa.delete(CallbackNote).where(CallbackNote.callback_id == unit.request_id))
        session.execute(sa.update(CallbackAttempt).where(CallbackAttempt.callback_id == unit.request_id)
                        .values(note=None).execution_options(synchronize_session=False))
    sids = list(unit.call_sids)
    if sids:
        session.execute(sa.delete(CallEvent).where(CallEvent.call_sid.in_(sids)))
        session.execute(sa.update(SafetyEvent).where(SafetyEvent.call_sid.in_(sids)).values(caller=None)
                        .execution_options(synchronize_session=False))
        session.execute(sa.update(Call).where(Call.call_sid.in_(sids)).values(caller=None, erased_at=now)
                        .execution_options(synchronize_session=False))
    if unit.recording_sids:
        session.execute(sa.delete(Recording).where(Recording.recording_sid.in_(unit.recording_sids)))
    return True


def purge(session: Session, *, now: dt.datetime, days: int, delete_recording: DeleteRecording,
          dry_run: bool = False) -> Purge:
    """Erase every unit that is due, each in its own transaction (committed here)."""
    result = Purge(cutoff(now, days))
    units = due(session, result.cutoff)
    session.rollback()  # no transaction held while Twilio is asked to delete messages
    for unit in units:
        if dry_run:
            result.add(unit)
            continue
        problem = _delete_at_twilio(unit, delete_recording)
        if problem:
            result.kept.append(f"{_name(unit)}: {problem}")
            continue
        if erase(session, unit, now):
            session.commit()
            result.add(unit)
        else:
            session.rollback()
    return result


def _delete_at_twilio(unit: Unit, delete_recording: DeleteRecording) -> str | None:
    for sid in unit.recording_sids:
        try:
            delete_recording(sid)
        except RecordingUnavailable as exc:
            return str(exc)
    return None


def _name(unit: Unit) -> str:
    return f"request #{unit.request_id}" if unit.request_id is not None else f"call {unit.call_sids[0]}"
