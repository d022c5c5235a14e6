"""The retention schedule: erasing callers' health information once it is no longer needed.

`RETENTION_DAYS` after a callback request closes, `voiceline retention purge` erases what it
holds about the caller: the number, the answers, the voice messages (deleted at Twilio
first), the notes, and the calls that made it (their caller ID and every step). A call that
left no request is erased the same number of days after it ended, unless it came from a phone
with a request the run keeps, open or closed too recently to be due (that request's page
shows it). A crisis-line press keeps the caller's number as long as that phone has such a
request, so its page still warns staff before they call (even once reopened); after that it
loses it too. What is left is what the counts and the audit
log need: the request's id, reason, language, dates, outcome and tries; the call's times,
outcome and language.

Open requests are never erased, however old. A request is erased in three steps:

1. It is frozen: `erased_at` is set to this run's own time, in a transaction of its own, only
   if it is still closed before the cutoff and nobody froze it. From then on it cannot be
   reopened or take a note (queue/work.py), and no call merges into it (calls merge only
   into open requests), so what it holds cannot change while Twilio deletes its messages.
2. Its messages are deleted at Twilio, with no transaction open (SQLite would otherwise keep
   every webhook waiting). If Twilio cannot delete one, this run lifts its freeze and the
   request keeps the rest until the next run.
3. Its data is erased in one transaction, only while the freeze is still this run's, with an
   audit entry naming it.

Two runs at once never erase or lift each other's requests: each acts only on freezes marked
with its own clock reading. A freeze left by a run that was stopped (older than
FREEZE_ABANDONED) is taken over and finished by the next run, whatever RETENTION_DAYS says by
then (even off): the request was due when frozen, and some of its messages may already be
gone from Twilio, so giving it back would offer messages that no longer exist. Calls are
erased by a conditional UPDATE that checks again, at that moment, that the call still has no
request and its phone no open one. Running the purge again is always safe.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from voiceline import audit
from voiceline.models import (
    Call,
    CallbackAttempt,
    CallbackNote,
    CallbackRequest,
    CallEvent,
    Recording,
    SafetyEvent,
    now_utc,
)
from voiceline.models.callbacks import OPEN
from voiceline.twilio_api import RecordingUnavailable

# Deletes one recording at Twilio, or raises RecordingUnavailable (twilio_api.delete_recording).
DeleteRecording = Callable[[str], None]

ERASED_PHONE = ""  # an erased request's number; a request not yet erased always has one
# A freeze older than this was left by a run that stopped: the next run takes it over.
FREEZE_ABANDONED = dt.timedelta(hours=1)
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

    cutoff: dt.datetime | None  # None: RETENTION_DAYS is off; only stopped runs are finished
    requests: int = 0
    calls: int = 0
    recordings: int = 0
    kept: list[str] = field(default_factory=list)  # why a unit was kept this time

    def add(self, unit: Unit) -> None:
        self.requests += unit.request_id is not None
        self.calls += len(unit.call_sids)
        self.recordings += len(unit.recording_sids)


def _due_request(before: dt.datetime):
    """SQL: a request whose retention has run out and that still holds a number."""
    return sa.and_(CallbackRequest.status != OPEN, CallbackRequest.closed_at < before,
                   CallbackRequest.phone != ERASED_PHONE)


def _kept_request(before: dt.datetime | None):
    """SQL: a request this run keeps: open, or closed too recently to be due (with no cutoff,
    RETENTION_DAYS off, any request not being erased)."""
    not_frozen = CallbackRequest.erased_at.is_(None)
    recent = sa.and_(not_frozen, CallbackRequest.closed_at >= before) if before is not None else not_frozen
    return sa.or_(CallbackRequest.status == OPEN, recent)


def _kept_request_for(phone, before: dt.datetime | None):
    """SQL: the phone has a request this run keeps: to be called back at that number, or made
    by a call from it (a caller who keyed in another number), as the queue's crisis flag and a
    request's page read it. Its page shows that phone's calls and crisis-line presses."""
    linked = aliased(Call)
    return sa.or_(
        sa.exists().where(_kept_request(before), CallbackRequest.phone == phone),
        sa.exists().where(linked.caller == phone, linked.callback_id == CallbackRequest.id, _kept_request(before)))


def _made_a_request(call_sid):
    return sa.exists().where(CallbackRequest.call_sid == call_sid)


def _lone(before: dt.datetime | None) -> tuple:
    """SQL: a call not erased, with no request, from no phone with a request this run keeps."""
    return (Call.callback_id.is_(None), Call.erased_at.is_(None), ~_made_a_request(Call.call_sid),
            ~_kept_request_for(Call.caller, before))


def due_requests(session: Session, before: dt.datetime | None,
                 now: dt.datetime) -> list[tuple[int, dt.datetime | None]]:
    """Requests due and not frozen (none when `before` is None), and freezes a stopped run
    left, with the freeze seen. Those are finished whatever RETENTION_DAYS says now: they
    were due when frozen, and some of their messages may be gone from Twilio already."""
    wanted = [sa.and_(CallbackRequest.erased_at < now - FREEZE_ABANDONED, CallbackRequest.phone != ERASED_PHONE)]
    if before is not None:
        wanted.append(sa.and_(_due_request(before), CallbackRequest.erased_at.is_(None)))
    return [(row.id, row.erased_at) for row in session.execute(
        sa.select(CallbackRequest.id, CallbackRequest.erased_at).where(sa.or_(*wanted))
        .order_by(CallbackRequest.id))]


def due_calls(session: Session, before: dt.datetime) -> list[str]:
    """Calls that left no request and ended before `before`, then steps, crisis-line events and
    messages whose call's own row was never written (the greeting's write lost to an outage),
    by their own time. NOT EXISTS, never NOT IN (PostgreSQL rescans a NOT IN subquery per row
    once it outgrows work_mem); with the indexes on calls.caller and callbacks.phone this lists
    250,000 calls in about 1.5 s."""
    lone = session.scalars(
        sa.select(Call.call_sid)
        .where(sa.func.coalesce(Call.ended_at, Call.started_at) < before, *_lone(before))
        .order_by(Call.started_at)).all()
    orphans: set[str] = set()
    safety_left = (SafetyEvent.caller.is_not(None), ~_kept_request_for(SafetyEvent.caller, before))
    for sid, at, *still_there in ((CallEvent.call_sid, CallEvent.at),
                                  (SafetyEvent.call_sid, SafetyEvent.at, *safety_left),
                                  (Recording.call_sid, Recording.created_at)):
        orphans.update(session.scalars(sa.select(sid).distinct().where(
            at < before, ~sa.exists().where(Call.call_sid == sid), ~_made_a_request(sid), *still_there)))
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


def purge(session: Session, *, now: dt.datetime, days: int | None, delete_recording: DeleteRecording,
          dry_run: bool = False, clock: Callable[[], dt.datetime] = now_utc) -> Purge:
    """Erase every request and call that is due, each on its own (committed here); with `days`
    None, only finish what stopped runs froze. `now` sets the cutoff; each freeze is marked
    with `clock()` read as it is made, so however long the run, its freeze of the request in
    hand is seconds old."""
    result = Purge(now - dt.timedelta(days=days) if days is not None else None)
    requests = due_requests(session, result.cutoff, now)
    calls = due_calls(session, result.cutoff) if result.cutoff is not None else []
    session.rollback()
    for request_id, frozen_at in requests:
        if dry_run:
            result.add(request_unit(session, request_id))
        else:
            _erase_request(session, request_id, frozen_at, result, clock(), delete_recording)
    with_messages = _calls_with_messages(session, calls)
    session.rollback()
    for call_sid in (sid for sid in calls if sid in with_messages):
        if dry_run:
            result.add(call_unit(session, call_sid))
        else:
            _erase_call(session, call_sid, result, clock(), delete_recording)
    for batch in _batches([sid for sid in calls if sid not in with_messages]):
        if dry_run:
            result.calls += len(batch)
        else:
            result.calls += len(_erase_lone_calls(session, batch, now, result.cutoff))
            session.commit()
    if not dry_run and result.cutoff is not None:
        _forget_crisis_callers(session, result.cutoff)
        session.commit()
    session.rollback()
    return result


def _erase_request(session: Session, request_id: int, frozen_at: dt.datetime | None, result: Purge,
                   now: dt.datetime, delete_recording: DeleteRecording) -> None:
    mine = CallbackRequest.erased_at == now
    freeze = sa.update(CallbackRequest).where(CallbackRequest.id == request_id).values(erased_at=now)
    if frozen_at is None:
        assert result.cutoff is not None  # listed as due
        freeze = freeze.where(_due_request(result.cutoff), CallbackRequest.erased_at.is_(None))
    else:  # take over a stopped run's freeze
        freeze = freeze.where(CallbackRequest.erased_at == frozen_at, CallbackRequest.phone != ERASED_PHONE)
    if session.execute(freeze.execution_options(synchronize_session=False)).rowcount != 1:
        session.rollback()  # reopened, or frozen by another run, since it was listed
        return
    session.commit()
    unit = request_unit(session, request_id)
    session.rollback()  # no transaction open while Twilio deletes
    deleted, problem = _delete_at_twilio(unit, delete_recording)
    if problem:
        if frozen_at is None:
            _lift(session, request_id, now)
        # else a stopped run's freeze stays (with this run's mark): its erase has begun, and
        # a later run finishes it once Twilio answers
        _forget_deleted(session, deleted, request_id)
        session.commit()
        result.kept.append(f"request #{request_id}: {problem}")
        return
    erased = session.execute(
        sa.update(CallbackRequest).where(CallbackRequest.id == request_id, mine, CallbackRequest.status != OPEN)
        .values(phone=ERASED_PHONE, answers={}, voicemail_ok=None, recording_sid=None)
        .execution_options(synchronize_session=False))
    if erased.rowcount != 1:  # no longer this run's freeze (a clock far off): keep it, minus what is gone
        session.rollback()
        _forget_deleted(session, deleted, request_id)
        session.commit()
        result.kept.append(f"request #{request_id}: its freeze was taken over by another run")
        return
    session.execute(sa.delete(CallbackNote).where(CallbackNote.callback_id == request_id))
    session.execute(sa.update(CallbackAttempt).where(CallbackAttempt.callback_id == request_id)
                    .values(note=None).execution_options(synchronize_session=False))
    _erase_calls(session, list(unit.call_sids), now, result.cutoff)
    _forget_deleted(session, deleted, None)  # every message: its own recording_sid is cleared above
    audit.record(session, "retention_erase", actor="cli", callback_id=request_id,
                 detail={"calls": len(unit.call_sids), "recordings": len(unit.recording_sids)})
    session.commit()
    result.add(unit)


def _lift(session: Session, request_id: int, now: dt.datetime) -> None:
    session.execute(sa.update(CallbackRequest)
                    .where(CallbackRequest.id == request_id, CallbackRequest.erased_at == now,
                           CallbackRequest.phone != ERASED_PHONE)
                    .values(erased_at=None).execution_options(synchronize_session=False))


def _erase_call(session: Session, call_sid: str, result: Purge, now: dt.datetime,
                delete_recording: DeleteRecording) -> None:
    """A call with messages and no request (one whose message the crisis key cut short): checked
    again just before its messages are deleted at Twilio, and by the erase itself after."""
    unit = call_unit(session, call_sid)
    written = session.scalar(sa.select(Call.id).where(Call.call_sid == call_sid)) is not None
    lone = session.scalar(sa.select(Call.id).where(Call.call_sid == call_sid, *_lone(result.cutoff))) is not None
    session.rollback()
    if written and not lone:  # its phone asked for a call, or it was queued, since it was listed: kept
        return
    deleted, problem = _delete_at_twilio(unit, delete_recording)
    if problem:
        _forget_deleted(session, deleted, None)
        session.commit()
        result.kept.append(f"call {call_sid}: {problem}")
        return
    if _erase_lone_calls(session, [call_sid], now, result.cutoff):
        result.add(unit)
    _forget_deleted(session, deleted, None)  # gone at Twilio, whatever the check found a moment later
    session.commit()


def _erase_lone_calls(session: Session, call_sids: Sequence[str], now: dt.datetime,
                      before: dt.datetime | None) -> list[str]:
    """Erase the calls that, checked again now, still have no request and come from no phone
    with an open one (rows locked by the UPDATE: a call `calls finish-stale` is queueing at
    this moment is seen with its request), and the orphan steps of calls never written."""
    still_lone = list(session.scalars(
        sa.update(Call)
        .where(Call.call_sid.in_(call_sids), *_lone(before))
        .values(caller=None, erased_at=now).returning(Call.call_sid)
        .execution_options(synchronize_session=False)))
    rest = [sid for sid in call_sids if sid not in set(still_lone)]
    orphans = []
    if rest:  # steps of calls never written (not those of calls kept since they were listed)
        written = set(session.scalars(sa.select(Call.call_sid).where(Call.call_sid.in_(rest))))
        made_requests = set(session.scalars(sa.select(CallbackRequest.call_sid)
                                            .where(CallbackRequest.call_sid.in_(rest))))
        orphans = [sid for sid in rest if sid not in written and sid not in made_requests]
    erased = still_lone + orphans
    if erased:
        _erase_steps(session, erased, before)
    return erased


def _erase_calls(session: Session, call_sids: list[str], now: dt.datetime, before: dt.datetime | None) -> None:
    """A frozen request's calls: theirs alone, erased whatever their phone."""
    _erase_steps(session, call_sids, before)
    session.execute(sa.update(Call).where(Call.call_sid.in_(call_sids)).values(caller=None, erased_at=now)
                    .execution_options(synchronize_session=False))


def _erase_steps(session: Session, call_sids: Sequence[str], before: dt.datetime | None) -> None:
    """Steps go; a crisis-line press keeps its number while that phone has a request this run
    keeps (that request's page warns whoever calls back)."""
    session.execute(sa.delete(CallEvent).where(CallEvent.call_sid.in_(call_sids)))
    session.execute(sa.update(SafetyEvent)
                    .where(SafetyEvent.call_sid.in_(call_sids), ~_kept_request_for(SafetyEvent.caller, before))
                    .values(caller=None).execution_options(synchronize_session=False))


def _forget_crisis_callers(session: Session, before: dt.datetime) -> None:
    """Crisis-line presses on erased calls kept their number for a request that was kept then
    and is due now: the number goes."""
    session.execute(
        sa.update(SafetyEvent)
        .where(SafetyEvent.caller.is_not(None), SafetyEvent.at < before,
               sa.exists().where(Call.call_sid == SafetyEvent.call_sid, Call.erased_at.is_not(None)),
               ~_kept_request_for(SafetyEvent.caller, before))
        .values(caller=None).execution_options(synchronize_session=False))


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
