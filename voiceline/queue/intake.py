"""Getting callback requests into the queue: from a caller's request, or from a missed call.

One open request per phone. A repeat caller's request is merged into the open one (new
answers win, the newest call is linked) rather than added beside it; a missed call from a
phone with an open request is linked to it and changes nothing in it. The partial unique
index on callbacks(phone) WHERE status = 'open' makes that hold under concurrency too.
Services here flush and never commit: the webhook view commits once.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from voiceline.call_history import Steps, steps_of
from voiceline.flow.steps import CALLER_ID_DECLINED, KEYED_PHONE
from voiceline.models import Call, CallbackRequest, now_utc
from voiceline.models.callbacks import OPEN, OPEN_ONLY, PRIORITY_MISSED, PRIORITY_REQUESTED
from voiceline.phones import mask
from voiceline.upsert import Target, insert_ignore, insert_new

log = logging.getLogger(__name__)
T = TypeVar("T")

# Answers that have columns of their own rather than a place in `answers`.
CONTACT_FIELDS = ("callback_phone", "preferred_window", "voicemail_ok")
# Step answers that are neither: how callback capture got to the number (never a number to call).
_CAPTURE_ONLY = (KEYED_PHONE, CALLER_ID_DECLINED)


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
    # Whether the call came from `phone` itself. A caller who keys in another number cannot
    # prove it is theirs: merged into that number's open request, they add, never overrule.
    from_that_phone: bool = True


def own_consent(consent: bool | None, phone: str, caller: str | None) -> bool | None:
    """Voicemail consent as it may be stored for `phone`: a "yes" counts only from that phone
    itself. Anyone can key in a number; only its owner may let the line name the clinic on it."""
    return False if consent and phone != caller else consent


def split_contact(answers: dict[str, str], caller: str | None
                  ) -> tuple[dict[str, str], str | None, str | None, bool | None]:
    """(questionnaire answers, the number to call, preferred window, voicemail consent).

    The number to call is one the caller confirmed, else the caller ID, unless they said not
    to call that phone (shared, or a work phone) and confirmed no other."""
    rest = {k: v for k, v in answers.items() if k not in CONTACT_FIELDS and k not in _CAPTURE_ONLY}
    phone = answers.get("callback_phone") or (None if answers.get(CALLER_ID_DECLINED) else caller)
    consent = answers.get("voicemail_ok")
    return rest, phone, answers.get("preferred_window"), None if consent is None else consent == "yes"


CALLBACKS = CallbackRequest.__table__
# The columns a merge reads from the open request it updates.
_MERGED_FROM = (CALLBACKS.c.id, CALLBACKS.c.answers, CALLBACKS.c.reason, CALLBACKS.c.priority,
                CALLBACKS.c.preferred_window, CALLBACKS.c.voicemail_ok, CALLBACKS.c.recording_sid)


@dataclass(frozen=True)
class Stored:
    """A callback request as stored: what the caller hears read back, and its id."""

    id: int
    phone: str
    preferred_window: str | None
    voicemail_ok: bool | None
    # This caller said yes to naming the clinic for another phone's number: kept as no, and
    # the read-back says why.
    consent_not_counted: bool = False


# The final step of every callback capture runs these: each is built once (SQLAlchemy then
# reuses its compiled SQL without rebuilding or re-hashing the statement).
_OPEN_FOR_PHONE = (sa.select(*_MERGED_FROM)
                   .where(CALLBACKS.c.phone == sa.bindparam("phone"), CALLBACKS.c.status == OPEN).with_for_update())
_MERGE_INTO = sa.update(CALLBACKS).where(CALLBACKS.c.id == sa.bindparam("merged_into"))  # SET: the values given
_LOCKED_CALL = (sa.select(Call.id, Call.outcome, Call.callback_id)
                .where(Call.call_sid == sa.bindparam("call_sid")).with_for_update())
_STORED = (sa.select(CALLBACKS.c.phone, CALLBACKS.c.preferred_window, CALLBACKS.c.voicemail_ok)
           .where(CALLBACKS.c.id == sa.bindparam("callback_id")))
_LINK_CALL = (sa.update(Call).where(Call.id == sa.bindparam("call_id"))
              .values(callback_id=sa.bindparam("linked_to"), outcome="callback_requested",
                      language=sa.func.coalesce(Call.language, sa.bindparam("spoken", type_=Call.language.type))))


def _open_for_phone(connection: sa.Connection, phone: str) -> sa.Row | None:
    """The phone's open request, locked for this transaction (on SQLite: the write lock)."""
    return connection.execute(_OPEN_FOR_PHONE, {"phone": phone}).first()


def _merged(existing: sa.Row, intake: Intake) -> dict[str, Any]:
    """The open request's new values once the caller's own request `intake` is merged into
    it: new answers win, the newest call is linked, and it outranks a missed call.

    From another phone (the caller keyed in this number) nothing already there is overruled:
    answers, language, best time and message stay, and voicemail consent can only go to "no".
    Otherwise anyone who knows a number could make the line leave the clinic's name on it."""
    trusted = intake.from_that_phone
    old_answers = existing.answers or {}
    values: dict[str, Any] = {
        "answers": {**old_answers, **intake.answers} if trusted else {**intake.answers, **old_answers},
        "call_sid": intake.call_sid,
        "prompts_version": intake.prompts_version,
        "updated_at": now_utc(),
        "requested_by_caller": True,
        "missed": False,
        "priority": min(existing.priority, PRIORITY_REQUESTED),
        # They asked again (perhaps after our voicemail): Next offers them at once, not after
        # RETRY_AFTER_MINUTES, which is for the calls we make, and MAX_ATTEMPTS counts afresh,
        # as after a reopen (two earlier voicemails must not make the next one close it).
        "last_attempt_at": None,
        "unsuccessful_attempts": 0,
    }
    # A specific reason beats a generic one from a later call.
    if existing.reason == "missed_call" or (trusted and intake.reason not in ("general", "missed_call")):
        values["reason"] = intake.reason
    if trusted:
        values["language"] = intake.language
    if intake.preferred_window and (trusted or not existing.preferred_window):
        values["preferred_window"] = intake.preferred_window
    if intake.voicemail_ok is not None and (trusted or intake.voicemail_ok is False):
        values["voicemail_ok"] = intake.voicemail_ok
    if intake.recording_sid and (trusted or not existing.recording_sid):
        values["recording_sid"] = intake.recording_sid
    return values


def add_or_merge(session: Session, intake: Intake) -> tuple[int, bool]:
    """The id of the phone's open request, created or updated; True when newly created.

    A missed call changes nothing in an open request it finds: the caller's own request
    (its language, its answers, the call a coordinator listens to) stays as the caller left
    it, and the missed call is only linked to it.

    Core statements on the session's connection, in its transaction: this runs on the final
    step of every callback capture, where the ORM's unit of work cost more than the rest of
    the webhook. A request from another call of the same phone, created a moment ago and not
    yet committed, makes the INSERT wait for that transaction and then insert nothing (the
    partial unique index on open requests); the request it created is then merged into.
    """
    connection = session.connection()
    existing = _open_for_phone(connection, intake.phone)
    if existing is None:
        created = insert_new(session, CallbackRequest, {
            "phone": intake.phone,
            "status": OPEN,
            "language": intake.language,
            "reason": intake.reason,
            "requested_by_caller": intake.requested_by_caller,
            "missed": not intake.requested_by_caller,
            "priority": PRIORITY_REQUESTED if intake.requested_by_caller else PRIORITY_MISSED,
            "answers": dict(intake.answers),
            "preferred_window": intake.preferred_window,
            "voicemail_ok": intake.voicemail_ok,
            "recording_sid": intake.recording_sid,
            "call_sid": intake.call_sid,
            "prompts_version": intake.prompts_version,
            "created_at": intake.at or now_utc(),
        }, conflict=["phone"], where=OPEN_ONLY)
        if created is not None:
            return created, True
        existing = _open_for_phone(connection, intake.phone)
        if existing is None:  # the other call's request was closed before we could read it
            raise RuntimeError("an open callback request for this phone was neither inserted nor found")
    if not intake.requested_by_caller:
        return existing.id, False
    connection.execute(_MERGE_INTO, {**_merged(existing, intake), "merged_into": existing.id})
    return existing.id, False


def create_call(writer: Target, call_sid: str, caller: str | None, caller_id_status: str,
                prompts_version: str) -> None:
    """The call's row, unless it is there already: written by the greeting, and here by any
    later step that finds it missing (Twilio's webhooks overtook the greeting's write, or it
    was lost)."""
    insert_ignore(writer, Call, {
        "call_sid": call_sid, "caller": caller, "caller_id_status": caller_id_status,
        "prompts_version": prompts_version, "started_at": now_utc(),
    }, ["call_sid"])


def _lock_or_create(session: Session, call_sid: str, caller: str | None, prompts_version: str,
                    read: Callable[[], T | None]) -> T:
    """`read()` of the call's row, locked; the row is created first if it is not there yet."""
    found = read()
    if found is None:
        # The raw From is not at hand here: "unknown" until the status callback tells.
        create_call(session, call_sid, caller, "valid" if caller else "unknown", prompts_version)
        found = read()
        if found is None:  # a database error like any other: the webhook's outage path answers
            raise sa.exc.NoResultFound(f"the row of call {call_sid} was neither found nor created")
    return found


def ensure_call(session: Session, call_sid: str, caller: str | None, prompts_version: str) -> Call:
    """The call's row, locked for this transaction (created if Twilio's webhooks overtook it).

    Locked first, before any callback request is read or written: the caller's last step
    (storing their request) and Twilio's status callback (perhaps queueing a missed call) can
    run at once when a caller hangs up as they press the last key. Taking the call first makes
    one wait for the other; otherwise each would hold what the other needs (PostgreSQL then
    aborts one of them as a deadlock).
    """
    locked = sa.select(Call).where(Call.call_sid == call_sid).with_for_update()
    return _lock_or_create(session, call_sid, caller, prompts_version, lambda: session.scalar(locked))


def _locked_call(session: Session, call_sid: str, caller: str | None, prompts_version: str) -> sa.Row:
    """ensure_call for the final step: the call's id and where it stands, locked the same way,
    read with Core (the step changes the row with one UPDATE, no ORM object needed)."""
    connection = session.connection()
    return _lock_or_create(session, call_sid, caller, prompts_version,
                           lambda: connection.execute(_LOCKED_CALL, {"call_sid": call_sid}).first())


def _stored(session: Session, callback_id: int) -> Stored:
    return Stored(callback_id, *session.connection().execute(_STORED, {"callback_id": callback_id}).one())


def request_from_call(session: Session, *, call_sid: str, caller: str | None, language: str, reason: str,
                      prompts_version: str, answers: dict[str, str], recording_sid: str | None
                      ) -> Stored | None:
    """The caller finished callback capture: store (or merge) their request.

    Idempotent: Twilio's retry of the final step (or a second finish of the same capture, a
    key pressed after an empty message) finds the call already marked callback_requested,
    stores nothing more, and reads back what the first one did.
    """
    call = _locked_call(session, call_sid, caller, prompts_version)
    collected = {**steps_of(session, call_sid).answers, **answers}
    questionnaire, phone, window, consent = split_contact(collected, caller)
    if not phone:
        return None
    window = window or "any"
    from_that_phone = phone == caller
    consent_not_counted = bool(consent) and not from_that_phone
    consent = own_consent(consent, phone, caller)
    if call.outcome == "callback_requested" and call.callback_id is not None:
        callback_id, created = call.callback_id, False
    else:
        callback_id, created = add_or_merge(session, Intake(
            phone=phone, language=language, reason=reason, call_sid=call_sid, prompts_version=prompts_version,
            requested_by_caller=True, answers=questionnaire, preferred_window=window,
            voicemail_ok=consent, recording_sid=recording_sid, from_that_phone=from_that_phone,
        ))
        session.connection().execute(_LINK_CALL, {"call_id": call.id, "linked_to": callback_id, "spoken": language})
        log.info("callback %s", "requested" if created else "merged into open request",
                 extra={"call_sid": call_sid, "callback_id": callback_id, "phone": mask(phone)})
    if created or not from_that_phone:
        # From another phone, what is read back is what this caller chose: the merge kept the
        # owner's choices, and reading those out would tell a stranger what the owner said.
        return Stored(callback_id, phone, window, consent, consent_not_counted)
    return _stored(session, callback_id)  # the merge may have kept an earlier window or consent


# A call that ended in one of these is settled: never a missed call (nor is one with a
# callback request or an accepted transfer). store.close_settled_call asks the same in SQL.
SETTLED_OUTCOMES = ("crisis_line", "transferred", "callback_requested")


def missed_call(session: Session, call: Call, steps: Steps, main_menu: str) -> int | None:
    """A call that reached the main menu and ended with no transfer and no callback request.

    Lands in the queue as missed and not requested by the caller, unless the phone already
    has an open request (the call is then linked to it). Crisis-line calls are left out:
    they are safety events, which staff see on their own, never queue items. Returns the
    id of the request the call is linked to, if any.
    """
    if call.callback_id is not None or call.transfer_accepted_at is not None:
        return None
    if call.outcome in SETTLED_OUTCOMES:
        return None
    if not steps.reached(main_menu):
        return None
    questionnaire, phone, window, consent = split_contact(steps.answers, call.caller)
    if not phone:
        call.outcome = call.outcome or "missed_no_number"
        return None
    callback_id, created = add_or_merge(session, Intake(
        phone=phone, language=call.language or "en", reason="missed_call", call_sid=call.call_sid,
        prompts_version=call.prompts_version, requested_by_caller=False, answers=questionnaire,
        preferred_window=window, voicemail_ok=own_consent(consent, phone, call.caller), at=call.ended_at,
        from_that_phone=phone == call.caller,
    ))
    call.callback_id = callback_id
    call.outcome = call.outcome or "missed"
    log.info("missed call %s", "queued" if created else "linked to the open request",
             extra={"call_sid": call.call_sid, "callback_id": callback_id})
    return callback_id
