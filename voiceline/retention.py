"""The retention schedule: erasing callers' health information once it is no longer needed.

`RETENTION_DAYS` after a callback request closes, `voiceline retention purge` erases what it
holds about the caller: the number, the answers, the voice messages (deleted at Twilio
first), the notes, and the calls that made it (their caller ID, every step, and the caller's
number on a crisis-line event). A call that left no request is erased the same number of days
after it ended, unless it came from a phone with an open request (that request's page shows
it, and its crisis-line presses). What is left is what the counts and the audit log need: the
request's id, reason, language, dates, outcome and tries; the call's times, outcome, language.

Open requests are never erased, however old. A request is erased in three steps:

1. It is frozen: `erased_at` is set, in a transaction of its own, only if it is still closed
   and closed before the cutoff. From then on it cannot be reopened or take a note
   (queue/work.py), and no call merges into it (calls merge only into open requests), so
   what it holds cannot change while Twilio is asked to delete its messages.
2. Its messages are deleted at Twilio, with no transaction open (SQLite would otherwise keep
   every webhook waiting). If Twilio cannot delete one, the freeze is lifted and the request
   keeps everything until the next run.
3. Its data is erased in one transaction, with an audit entry naming it.

A run stopped between 1 and 3 leaves a frozen request that still has its number; the next run
finds it (the number is what marks a request not yet erased) and finishes it. Running the
purge again is always safe.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from voiceline import audit
from voiceline.models import Call, CallbackAttempt, CallbackNote, CallbackRequest, CallEvent, Recording, SafetyEvent
from voiceline.models.callbacks import OPEN
from voiceline.twilio_api import RecordingUnavailable

# Deletes one recording at Twilio, or raises RecordingUnavailable (twilio_api.delete_recording).
DeleteRecording = Callable[[str], None]

ERASED_PHONE = ""  # an erased request's number; a request not yet erased always has one
# Calls without a message are erased this many to a transaction (one commit each would make
# a first run over a year of calls take an hour); IN lists are kept this long too.
BATCH = 500


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


def _due_request(before: dt.datetime):
    """SQL: a request whose retention has run out and that still holds a number."""
    return sa.and_(CallbackRequest.status != OPEN, CallbackRequest.closed_at < before,
                   CallbackRequest.phone != ERASED_PHONE)


def due_requests(session: Session, before: dt.datetime) -> list[int]:
    return list(session.scalars(sa.select(CallbackRequest.id).where(_due_request(before))
                                .order_by(CallbackRequest.id)))


def due_calls(session: Session, before: dt.datetime) -> list[str]:
    """Calls that left no request and ended before `before`, then steps, crisis-line events and
    messages whose call's own row was never written (the greeting's write lost to an outage),
    by their own time. Anti-joins (NOT EXISTS), which PostgreSQL plans as hash anti-joins
    however large the tables grow."""
    def made_a_request(sid):
        return sa.exists().where(CallbackRequest.call_sid == sid)

    from_open_request_phone = sa.exists().where(CallbackRequest.status == OPEN, CallbackRequest.phone == Call.caller)
    lone = session.scalars(
        sa.select(Call.call_sid)
        .where(Call.callback_id.is_(None), Call.erased_at.is_(None),
               sa.func.coalesce(Call.ended_at, Call.started_at) < before,
               ~made_a_request(Call.call_sid), ~from_open_request_phone)
        .order_by(Call.started_at)).all()
    orphans: set[str] = set()
    for sid, at, *still_there in ((CallEvent.call_sid, CallEvent.at),
                                  (SafetyEvent.call_sid, SafetyEvent.at, SafetyEvent.caller.is_not(None)),
                                  (Recording.call_sid, Recording.created_at)):
        orphans.update(session.scalars(sa.select(sid).distinct().where(
            at < before, ~sa.exists().where(Call.call_sid == sid), ~made_a_request(sid), *still_there)))
    return [*lone, *sorted(orphans)]


def request_unit(session: Session, request_id: int) -> Unit:
    """A request with what it holds now: the calls linked to it or that made it, and their
    messages and its own."""
    call_sid, recording_sid = session.execute(sa.select(CallbackRequest.call_sid, CallbackRequest.recording_sid)
                                              .where(CallbackRequest.id == request_id)).one()
    sids = {call_sid, *session.scalars(sa.select(Call.call_sid).where(Call.callback_id == request_id))}
    return Unit(request_id, tuple(sorted(sids)), _recordings_of(session, sids, recording_sid))


def call_unit(session: Session, call_sid: str) -> Unit:
    return Unit(None, (call_sid,), _recordings_of(session, [call_sid], None))


def _recordings_of(session: Session, call_sids: Sequence[str] | set[str], extra: str | None) -> tuple[str, ...]:
    sids = set(session.scalars(sa.select(Recording.recording_sid).where(Recording.call_sid.in_(list(call_sids)))))
    if extra:
        sids.add(extra)
    return tuple(sorted(sids))


def _batches(items: Sequence[str]) -> list[Sequence[str]]:
    return [items[i:i + BATCH] for i in range(0, len(items), BATCH)]


def _calls_with_messages(session: Session, call_sids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for batch in _batches(call_sids):
        found.update(session.scalars(sa.select(Recording.call_sid).distinct().where(Recording.call_sid.in_(batch))))
    return found


def purge(session: Session, *, now: dt.datetime, days: int, delete_recording: DeleteRecording,
          dry_run: bool = False) -> Purge:
    """Erase every request and call that is due, each on its own (committed here)."""
    result = Purge(cutoff(now, days))
    requests, calls = due_requests(session, result.cutoff), due_calls(session, result.cutoff)
    session.rollback()
    for request_id in requests:
        if dry_run:
            result.add(request_unit(session, request_id))
        else:
            _erase_request(session, request_id, result, now, delete_recording)
    with_messages = _calls_with_messages(session, calls)
    session.rollback()
    for call_sid in (sid for sid in calls if sid in with_messages):
        if dry_run:
            result.add(call_unit(session, call_sid))
        else:
            _erase_call(session, call_sid, result, now, delete_recording)
    for batch in _batches([sid for sid in calls if sid not in with_messages]):
        if dry_run:
            result.calls += len(batch)
        else:
            _erase_quiet_calls(session, batch, result, now)
    session.rollback()
    return result


def _erase_request(session: Session, request_id: int, result: Purge, now: dt.datetime,
                   delete_recording: DeleteRecording) -> None:
    frozen = session.execute(
        sa.update(CallbackRequest).where(CallbackRequest.id == request_id, _due_request(result.cutoff))
        .values(erased_at=now).execution_options(synchronize_session=False))
    if frozen.rowcount != 1:  # reopened, or erased by another run, since it was listed
        session.rollback()
        return
    session.commit()
    unit = request_unit(session, request_id)
    session.rollback()  # no transaction open while Twilio deletes
    deleted, problem = _delete_at_twilio(unit, delete_recording)
    if problem:
        session.execute(sa.update(CallbackRequest)
                        .where(CallbackRequest.id == request_id, CallbackRequest.phone != ERASED_PHONE)
                        .values(erased_at=None).execution_options(synchronize_session=False))
        _forget_deleted(session, deleted, request_id)
        session.commit()
        result.kept.append(f"request #{request_id}: {problem}")
        return
    session.execute(
        sa.update(CallbackRequest).where(CallbackRequest.id == request_id)
        .values(phone=ERASED_PHONE, answers={}, voicemail_ok=None, recording_sid=None, erased_at=now)
        .execution_options(synchronize_session=False))
    session.execute(sa.delete(CallbackNote).where(CallbackNote.callback_id == request_id))
    session.execute(sa.update(CallbackAttempt).where(CallbackAttempt.callback_id == request_id)
                    .values(note=None).execution_options(synchronize_session=False))
    _erase_calls(session, unit, now)
    audit.record(session, "retention_erase", actor="cli", callback_id=request_id,
                 detail={"calls": len(unit.call_sids), "recordings": len(unit.recording_sids)})
    session.commit()
    result.add(unit)


def _erase_call(session: Session, call_sid: str, result: Purge, now: dt.datetime,
                delete_recording: DeleteRecording) -> None:
    unit = call_unit(session, call_sid)
    session.rollback()
    deleted, problem = _delete_at_twilio(unit, delete_recording)
    if problem:
        _forget_deleted(session, deleted, None)
        session.commit()
        result.kept.append(f"call {call_sid}: {problem}")
        return
    if session.scalar(sa.select(Call.callback_id).where(Call.call_sid == call_sid)) is not None:
        session.rollback()  # linked to a request since it was listed: it goes with that request
        return
    _erase_calls(session, unit, now)
    session.commit()
    result.add(unit)


def _erase_quiet_calls(session: Session, batch: Sequence[str], result: Purge, now: dt.datetime) -> None:
    """Calls with nothing at Twilio to delete: a batch to a transaction."""
    linked = set(session.scalars(sa.select(Call.call_sid).where(Call.call_sid.in_(batch),
                                                                Call.callback_id.is_not(None))))
    unit = Unit(None, tuple(sid for sid in batch if sid not in linked), ())  # linked since: with its request
    if unit.call_sids:
        _erase_calls(session, unit, now)
    session.commit()
    result.add(unit)


def _erase_calls(session: Session, unit: Unit, now: dt.datetime) -> None:
    sids = list(unit.call_sids)
    session.execute(sa.delete(CallEvent).where(CallEvent.call_sid.in_(sids)))
    session.execute(sa.update(SafetyEvent).where(SafetyEvent.call_sid.in_(sids)).values(caller=None)
                    .execution_options(synchronize_session=False))
    session.execute(sa.update(Call).where(Call.call_sid.in_(sids)).values(caller=None, erased_at=now)
                    .execution_options(synchronize_session=False))
    if unit.recording_sids:
        session.execute(sa.delete(Recording).where(Recording.recording_sid.in_(unit.recording_sids)))


def _delete_at_twilio(unit: Unit, delete_recording: DeleteRecording) -> tuple[list[str], str | None]:
    """The messages deleted, and why the next one could not be (None: all were)."""
    deleted: list[str] = []
    for sid in unit.recording_sids:
        try:
            delete_recording(sid)
        except RecordingUnavailable as exc:
            return deleted, str(exc)
        deleted.append(sid)
    return deleted, None


def _forget_deleted(session: Session, deleted: list[str], request_id: int | None) -> None:
    """A unit kept after some of its messages were deleted at Twilio: its page must not offer
    to play those (the rest waits for the next run)."""
    if not deleted:
        return
    session.execute(sa.delete(Recording).where(Recording.recording_sid.in_(deleted)))
    if request_id is not None:
        session.execute(sa.update(CallbackRequest)
                        .where(CallbackRequest.id == request_id, CallbackRequest.recording_sid.in_(deleted))
                        .values(recording_sid=None).execution_options(synchronize_session=False))
