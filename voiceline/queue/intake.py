"""Getting callback requests into the queue: from a caller's request, or from a missed call.

One open request per phone. A repeat caller's request is merged into the open one (new
answers win, the newest call is linked) rather than added beside it; the partial unique
index on callbacks(phone) WHERE status = 'open' makes that hold under concurrency too.
Services here flush and never commit: the webhook view commits once.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from voiceline.call_history import Steps, steps_of
from voiceline.models import Call, CallbackRequest, now_utc
from voiceline.models.callbacks import OPEN, PRIORITY_MISSED, PRIORITY_REQUESTED
from voiceline.phones import mask

log = logging.getLogger(__name__)

# Answers that have columns of their own rather than a place in `answers`.
CONTACT_FIELDS = ("callback_phone", "preferred_window", "voicemail_ok")


@dataclass
class Intake:
    phone: str
    language: str
    reason: str
    call_sid: str
    prompts_version: str
    requested_by_caller: bool
    answers: dict[str, Any] = field(default_factory=dict)
    preferred_window: str | None = None
    voicemail_ok: bool | None = None
    recording_sid: str | None = None
    at: dt.datetime | None = None  # when the caller called, if not now (a call closed late)


def split_contact(answers: dict[str, str]) -> tuple[dict[str, str], str | None, str | None, bool | None]:
    """(questionnaire answers, callback phone, preferred window, voicemail consent)."""
    rest = {k: v for k, v in answers.items() if k not in CONTACT_FIELDS}
    consent = answers.get("voicemail_ok")
    return rest, answers.get("callback_phone"), answers.get("preferred_window"), (
        None if consent is None else consent == "yes"
    )


def _open_for_phone(session: Session, phone: str) -> CallbackRequest | None:
    stmt = sa.select(CallbackRequest).where(CallbackRequest.phone == phone, CallbackRequest.status == OPEN)
    return session.scalar(stmt.with_for_update())


def _merge(existing: CallbackRequest, intake: Intake) -> None:
    existing.answers = {**(existing.answers or {}), **intake.answers}
    existing.language = intake.language
    existing.call_sid = intake.call_sid
    existing.prompts_version = intake.prompts_version
    if intake.requested_by_caller:
        # A specific reason beats a generic one from a later call.
        if intake.reason not in ("general", "missed_call") or existing.reason == "missed_call":
            existing.reason = intake.reason
        existing.requested_by_caller = True
        existing.missed = False
        existing.priority = min(existing.priority, PRIORITY_REQUESTED)
    if intake.preferred_window:
        existing.preferred_window = intake.preferred_window
    if intake.voicemail_ok is not None:
        existing.voicemail_ok = intake.voicemail_ok
    if intake.recording_sid:
        existing.recording_sid = intake.recording_sid
    existing.updated_at = now_utc()


def add_or_merge(session: Session, intake: Intake) -> tuple[CallbackRequest, bool]:
    """The open request for this phone, created or updated; True when newly created."""
    existing = _open_for_phone(session, intake.phone)
    if existing is None:
        request = CallbackRequest(
            phone=intake.phone,
            language=intake.language,
            reason=intake.reason,
            requested_by_caller=intake.requested_by_caller,
            missed=not intake.requested_by_caller,
            priority=PRIORITY_REQUESTED if intake.requested_by_caller else PRIORITY_MISSED,
            answers=dict(intake.answers),
            preferred_window=intake.preferred_window,
            voicemail_ok=intake.voicemail_ok,
            recording_sid=intake.recording_sid,
            call_sid=intake.call_sid,
            prompts_version=intake.prompts_version,
            created_at=intake.at or now_utc(),
        )
        try:
            with session.begin_nested():
                session.add(request)
            return request, True
        except IntegrityError:
            # Another call from the same phone created it a moment ago.
            existing = _open_for_phone(session, intake.phone)
            if existing is None:
                raise
    _merge(existing, intake)
    session.flush()
    return existing, False


def ensure_call(session: Session, call_sid: str, caller: str | None, prompts_version: str) -> Call:
    """The call's row, locked for this transaction (created if Twilio's webhooks overtook it).

    Locked first, before any callback request is read or written: the caller's last step
    (storing their request) and Twilio's status callback (perhaps queueing a missed call) can
    run at once when a caller hangs up as they press the last key. Taking the call first makes
    one wait for the other; otherwise each would hold what the other needs (PostgreSQL then
    aborts one of them as a deadlock).
    """
    locked = sa.select(Call).where(Call.call_sid == call_sid).with_for_update()
    call = session.scalar(locked)
    if call is None:
        call = Call(call_sid=call_sid, caller=caller, caller_id_status="valid" if caller else "unknown",
                    prompts_version=prompts_version)
        try:
            with session.begin_nested():
                session.add(call)
        except IntegrityError:
            call = session.scalar(locked)
    return call


def request_from_call(session: Session, *, call_sid: str, caller: str | None, language: str, reason: str,
                      prompts_version: str, answers: dict[str, str], recording_sid: str | None
                      ) -> CallbackRequest | None:
    """The caller finished callback capture: store (or merge) their request.

    Idempotent: Twilio's retry of the final step finds the call already marked
    callback_requested and returns the same request.
    """
    call = ensure_call(session, call_sid, caller, prompts_version)
    if call.outcome == "callback_requested" and call.callback_id is not None:
        return session.get(CallbackRequest, call.callback_id)
    collected = {**steps_of(session, call_sid).answers, **answers}
    questionnaire, phone, window, consent = split_contact(collected)
    phone = phone or caller
    if not phone:
        return None
    request, created = add_or_merge(session, Intake(
        phone=phone, language=language, reason=reason, call_sid=call_sid, prompts_version=prompts_version,
        requested_by_caller=True, answers=questionnaire, preferred_window=window or "any",
        voicemail_ok=consent, recording_sid=recording_sid,
    ))
    call.callback_id = request.id
    call.outcome = "callback_requested"
    if call.language is None:
        call.language = language
    log.info("callback %s", "requested" if created else "merged into open request",
             extra={"call_sid": call_sid, "callback_id": request.id, "phone": mask(phone)})
    return request


# A call that ended in one of these is settled: never a missed call (nor is one with a
# callback request or an accepted transfer). store.close_settled_call asks the same in SQL.
SETTLED_OUTCOMES = ("crisis_line", "transferred", "callback_requested")


def missed_call(session: Session, call: Call, steps: Steps, main_menu: str) -> CallbackRequest | None:
    """A call that reached the main menu and ended with no transfer and no callback request.

    Lands in the queue as missed and not requested by the caller, unless the phone already
    has an open request (the call is then linked to it). Crisis-line calls are left out:
    they are safety events, which staff see on their own, never queue items.
    """
    if call.callback_id is not None or call.transfer_accepted_at is not None:
        return None
    if call.outcome in SETTLED_OUTCOMES:
        return None
    if not steps.reached(main_menu):
        return None
    questionnaire, phone, window, consent = split_contact(steps.answers)
    phone = phone or call.caller
    if not phone:
        call.outcome = call.outcome or "missed_no_number"
        return None
    existing = _open_for_phone(session, phone)
    if existing is not None:
        call.callback_id = existing.id
        call.outcome = call.outcome or "missed"
        return existing
    request, _ = add_or_merge(session, Intake(
        phone=phone, language=call.language or "en", reason="missed_call", call_sid=call.call_sid,
        prompts_version=call.prompts_version, requested_by_caller=False, answers=questionnaire,
        preferred_window=window, voicemail_ok=consent, at=call.ended_at,
    ))
    call.callback_id = request.id
    call.outcome = call.outcome or "missed"
    log.info("missed call queued", extra={"call_sid": call.call_sid, "callback_id": request.id})
    return request
