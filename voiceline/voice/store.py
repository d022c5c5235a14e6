"""What the voice webhooks write: calls, their steps, safety events, recordings.

One webhook, one short transaction. Most steps are a single idempotent INSERT into
call_events; the writes that matter more (language, outcome, a crisis press) happen only
when that insert was new, so a retried webhook changes nothing.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging

import sqlalchemy as sa
from sqlalchemy.orm import Session

from voiceline.autocommit import Autocommit
from voiceline.call_history import steps_of
from voiceline.flow.steps import CallState, Recording, Step
from voiceline.models import Call, CallEvent, SafetyEvent, now_utc
from voiceline.models import Recording as RecordingRow
from voiceline.phones import WITHHELD_CALLER_IDS
from voiceline.queue import intake
from voiceline.upsert import first_row, insert_ignore, insert_or_update

# A webhook writes either in the session's transaction (when a callback request is stored in
# the same request) or statement by statement, each committed on its own (every other step):
# see views._writes.
Writer = Session | Autocommit

log = logging.getLogger(__name__)

FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


def caller_id_status(raw: str | None, caller: str | None) -> str:
    if caller:
        return "valid"
    if (raw or "").strip().lower() in WITHHELD_CALLER_IDS:
        return "withheld"
    return "invalid"


def start_call(writer: Writer, call_sid: str, raw_from: str | None, caller: str | None,
               prompts_version: str) -> None:
    intake.create_call(writer, call_sid, caller, caller_id_status(raw_from, caller), prompts_version)


def has_effects(step: Step) -> bool:
    """Whether storing the step writes more than its own call_events row (a crisis-line event)."""
    return step.safety


def record_step(writer: Writer, call_sid: str, state: CallState, step: Step, *, caller: str | None,
                dialed: str | None = None) -> bool:
    """Keep one webhook step: one row, written once however often Twilio retries.

    The row carries what the call's own record needs (the language now spoken, an outcome
    such as a connected transfer); the status callback folds those into the call at the end,
    so a step writes one row instead of a row and an UPDATE in a transaction.
    """
    field, value = next(iter(step.answers.items()), (None, None))
    inserted = insert_ignore(writer, CallEvent, {
        "call_sid": call_sid,
        "step": state.step,
        "at": now_utc(),
        "node": state.node[:64],
        "phase": state.phase,
        "choice": step.choice[:40],
        "language": step.language or state.lang,
        "field": field,
        "value": value,
        "presented": step.presented[:80],
        "outcome": step.outcome if step.outcome != "callback_requested" else None,
    }, ["call_sid", "step"])
    if inserted and step.safety:
        log_safety_event(writer, call_sid, state.step, state.node, state.lang, caller, dialed or "")
    return inserted


def log_safety_event(writer: Writer, call_sid: str, step: int, node: str, lang: str | None,
                     caller: str | None, dialed: str) -> None:
    insert_ignore(writer, SafetyEvent, {
        "call_sid": call_sid, "step": step, "at": now_utc(), "kind": "crisis_line", "node": node[:64],
        "language": lang, "caller": caller, "dialed": dialed,
    }, ["call_sid", "step"])
    log.warning("crisis line requested", extra={"call_sid": call_sid, "node": node})


def crisis_dial_finished(session: Session, call_sid: str, status: str) -> None:
    latest = sa.select(sa.func.max(SafetyEvent.id)).where(SafetyEvent.call_sid == call_sid).scalar_subquery()
    session.execute(sa.update(SafetyEvent).where(SafetyEvent.id == latest).values(dial_status=status[:20]))


def accept_transfer(session: Session, parent_call_sid: str) -> None:
    session.execute(
        sa.update(Call)
        .where(Call.call_sid == parent_call_sid, Call.transfer_accepted_at.is_(None))
        .values(transfer_accepted_at=now_utc())
    )


def transfer_accepted(session: Session, call_sid: str) -> bool:
    accepted = session.scalar(sa.select(Call.transfer_accepted_at).where(Call.call_sid == call_sid))
    return accepted is not None


def save_recording(writer: Writer, call_sid: str, recording: Recording, status: str) -> None:
    """The Record action and the recording status callback arrive in either order."""
    now = now_utc()
    values = {"recording_sid": recording.sid, "call_sid": call_sid, "url": recording.url or None,
              "duration_seconds": recording.duration, "status": status, "created_at": now, "updated_at": now}
    update = ["updated_at"]
    if recording.url:
        update.append("url")
    if recording.duration:
        update.append("duration_seconds")
    if status != "in-progress":
        update.append("status")
    insert_or_update(writer, RecordingRow, values, ["recording_sid"], update)


@functools.cache
def _close_settled_statement() -> sa.Update:
    def last(column):  # the value its last step recorded, as call_history.steps_of reads it
        return (sa.select(column).where(CallEvent.call_sid == Call.call_sid, column.is_not(None))
                .order_by(CallEvent.step.desc()).limit(1).scalar_subquery())

    caller = sa.bindparam("given_caller", type_=Call.caller.type)
    return (
        sa.update(Call)
        .where(Call.call_sid == sa.bindparam("sid", type_=Call.call_sid.type),
               Call.erased_at.is_(None),  # an erased call: finish_call leaves it as it is
               sa.or_(Call.callback_id.is_not(None), Call.transfer_accepted_at.is_not(None),
                      *(Call.outcome == outcome for outcome in intake.SETTLED_OUTCOMES)))
        .values(
            twilio_status=sa.bindparam("given_status", type_=Call.twilio_status.type),
            ended_at=sa.func.coalesce(Call.ended_at, sa.bindparam("now", type_=Call.ended_at.type)),
            duration_seconds=sa.func.coalesce(sa.bindparam("duration", type_=Call.duration_seconds.type),
                                              Call.duration_seconds),
            language=sa.func.coalesce(last(CallEvent.language), Call.language),
            outcome=sa.func.coalesce(Call.outcome, last(CallEvent.outcome)),
            caller_id_status=sa.case((Call.caller.is_(None) & caller.is_not(None),
                                      sa.bindparam("given_caller_id_status", type_=Call.caller_id_status.type)),
                                     else_=Call.caller_id_status),
            caller=sa.func.coalesce(Call.caller, caller),
        )
        .returning(Call.call_sid, Call.outcome)
    )


def close_settled_call(writer: Writer, call_sid: str, *, raw_from: str | None, caller: str | None, status: str,
                       duration: int | None, now: dt.datetime) -> str | None:
    """Twilio's final status for a call already settled (a callback request, an accepted
    transfer, the crisis line: never a missed call, so no decision is left for Python): one
    UPDATE that does what finish_call would, its steps folded in by SQL. Its outcome ("settled"
    if no step named one); None, with nothing written, for any other call: finish_call decides
    those."""
    if status not in FINAL_STATUSES:
        return None
    row = first_row(writer, _close_settled_statement(), {
        "sid": call_sid, "given_status": status[:20], "now": now, "duration": duration, "given_caller": caller,
        "given_caller_id_status": caller_id_status(raw_from, caller),
    })
    return None if row is None else (row[1] or "settled")


def finish_call(session: Session, call_sid: str, *, raw_from: str | None, caller: str | None, status: str,
                duration: int | None, prompts_version: str, main_menu: str, now: dt.datetime) -> Call | None:
    """Twilio's status callback: may come late, twice, or before the last step's webhook.
    The call's row (None if the retention schedule erased it)."""
    call = intake.ensure_call(session, call_sid, caller, prompts_version)
    if call.erased_at is not None:
        return None  # erased by the retention schedule: a very late retry brings nothing back
    if call.caller is None and caller:
        call.caller = caller
        call.caller_id_status = caller_id_status(raw_from, caller)
    if status in FINAL_STATUSES or call.ended_at is None:
        call.twilio_status = status[:20]  # a late "in-progress" does not undo a call's end
    if status in FINAL_STATUSES:
        call.ended_at = call.ended_at or now
        if duration is not None:
            call.duration_seconds = duration
        _close(session, call, main_menu)
    session.flush()
    return call


def _close(session: Session, call: Call, main_menu: str) -> None:
    """Fold a finished call's steps into its row (language, outcome) and queue it if missed."""
    steps = steps_of(session, call.call_sid)
    if steps.language:
        call.language = steps.language
    if call.outcome is None and steps.outcome:
        call.outcome = steps.outcome
    intake.missed_call(session, call, steps, main_menu)


# Twilio ends every call after at most 4 hours (its default time limit), so a call older than
# that with no final status lost its status callback (an outage of ours at the time).
STATUS_NEVER_CAME = "no-status-callback"


def finish_stale_calls(session: Session, *, started_before: dt.datetime, main_menu: str) -> list[Call]:
    """Close calls whose status callback never arrived, as the callback would have: their
    outcome from their steps, missed calls queued. Ended at their last step (or start)."""
    last_step = (
        sa.select(sa.func.max(CallEvent.at)).where(CallEvent.call_sid == Call.call_sid).scalar_subquery()
    )
    rows = session.execute(
        sa.select(Call, last_step)
        .where(Call.ended_at.is_(None), Call.started_at < started_before,
               Call.erased_at.is_(None))  # erased by the retention schedule: nothing left to queue
        .order_by(Call.started_at)
        .with_for_update(of=Call, skip_locked=True)
    ).all()
    for call, last_at in rows:
        call.twilio_status = STATUS_NEVER_CAME
        call.ended_at = last_at or call.started_at
        _close(session, call, main_menu)
    session.flush()
    return [call for call, _ in rows]
