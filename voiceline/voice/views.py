"""Thin webhook views: parse the request, ask the engine, keep the step, answer TwiML.

Every response is TwiML with status 200, whatever happens inside: an unreachable database
or a bug gives the caller the fallback (patient services when open, the hours and the crisis
line when closed), never Twilio's "application error". Only the signature guard answers
otherwise (403).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flask import Blueprint, current_app, g, request
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from werkzeug.exceptions import Forbidden, HTTPException

from voiceline.autocommit import Autocommit
from voiceline.call_history import steps_of
from voiceline.extensions import db
from voiceline.flow.engine import CRISIS_ATTEMPT_LINE, CRISIS_ATTEMPT_PATIENT_SERVICES, Engine
from voiceline.flow.steps import (
    KEYED_PHONE,
    CallbackDraft,
    CallbackSummary,
    CallState,
    Context,
    Hangup,
    Redirect,
    Step,
    Target,
)
from voiceline.models import now_utc
from voiceline.phones import normalize_caller_id
from voiceline.queue import intake
from voiceline.voice import params, store, twiml
from voiceline.voice.breaker import Breaker, DatabaseUnavailable
from voiceline.voice.security import verify_twilio_signature

log = logging.getLogger(__name__)

bp = Blueprint("voice", __name__, url_prefix="/voice")
bp.before_request(verify_twilio_signature)


def _engine() -> Engine:
    return current_app.extensions["voiceline.engine"]


def call_context(call_sid: str, caller: str | None) -> Context:
    config = current_app.config
    return Context(
        now=current_app.extensions["voiceline.clock"](),
        hours=config["BUSINESS_HOURS"],
        patient_services_number=config["PATIENT_SERVICES_NUMBER"],
        crisis_number=config["CRISIS_LINE_NUMBER"],
        crisis_fallback_number=config["CRISIS_LINE_FALLBACK_NUMBER"],
        caller_phone=caller,
        call_sid=call_sid,
        dial_timeout=config["DIAL_TIMEOUT_SECONDS"],
        recording_max=config["RECORDING_MAX_SECONDS"],
    )


def _render(step_or_verbs):
    verbs = step_or_verbs.verbs if isinstance(step_or_verbs, Step) else step_or_verbs
    return twiml.render(_engine().flow, verbs)


def _caller() -> str | None:
    return normalize_caller_id(request.form.get("From"))


def _breaker() -> Breaker:
    return current_app.extensions["voiceline.breaker"]


def _database() -> None:
    """Before touching the database: fail at once while the breaker is open."""
    _breaker().check()


@contextmanager
def _writes(atomic: bool = False) -> Iterator[store.Writer]:
    """Where a webhook's writes go.

    In one transaction when they must stand or fall together: the step has effects beyond
    its own row (a crisis-line event: a retry finds the row and skips the event, so the two
    are written together), or this request already began a transaction (it stored a callback
    request). Otherwise, and that is the common menu step, each statement on its own
    (voiceline.autocommit): one idempotent INSERT without BEGIN and COMMIT.
    """
    if atomic or (db.session.registry.has() and db.session().in_transaction()):
        yield db.session
        db.session.commit()
        return
    yield Autocommit(db.engine)


def _best_effort(what: str, call_sid: str | None, write: Callable[[Session], object]) -> None:
    """Store something the caller must not wait on (a crisis dial, an accepted transfer):
    if the database fails, log it without caller data and go on answering."""
    try:
        _database()
        write(db.session)
        db.session.commit()
    except (SQLAlchemyError, DatabaseUnavailable) as error:
        _failed(error)
        log.warning("%s not stored (%s)", what, type(error).__name__, extra={"call_sid": call_sid})


def _failed(error: Exception) -> None:
    db.session.rollback()
    _breaker().observe(error)


def _keep(call_sid: str, state: CallState, step: Step, caller: str | None):
    """Store the step and answer with it. A crisis-line step, and the goodbye after a transfer
    that connected, are answered even if storing fails (never a second dial)."""
    try:
        if call_sid:
            _database()
            with _writes(atomic=store.has_effects(step)) as writer:
                store.record_step(writer, call_sid, state, step, caller=caller,
                                  dialed=current_app.config["CRISIS_LINE_NUMBER"])
    except (SQLAlchemyError, DatabaseUnavailable) as error:
        _failed(error)
        if not (step.safety or step.outcome == "transferred"):
            raise
        log.warning("%s step not stored (%s); answering anyway", "crisis-line" if step.safety else "transfer",
                    type(error).__name__, extra={"call_sid": call_sid})
    return _render(step)


@bp.post("/incoming")
def incoming():
    call_sid = params.sid(request.form.get("CallSid"))
    caller = _caller()
    engine = _engine()
    step = engine.incoming(call_context(call_sid, caller))
    if call_sid:
        _database()
        with _writes() as writer:  # the greeting itself is the call's row; steps start at 1
            store.start_call(writer, call_sid, request.form.get("From"), caller, engine.flow.prompts_version)
    return _render(step)


@bp.post("/step/<path:node>")  # any node name routes here; unknown ones restart the menu
def step(node: str):
    call_sid = params.sid(request.form.get("CallSid"))
    caller = _caller()
    state = params.state_from(node, request.args)
    given = params.input_from(request.form)
    ctx = call_context(call_sid, caller)
    engine = _engine()

    def finalize(draft: CallbackDraft) -> CallbackSummary:
        if not call_sid:
            return CallbackSummary(None, "any", None)
        _database()
        if draft.recording is not None:
            store.save_recording(db.session, call_sid, draft.recording, "in-progress")
        request_row = intake.request_from_call(
            db.session, call_sid=call_sid, caller=caller, language=draft.lang, reason=draft.reason,
            prompts_version=engine.flow.prompts_version, answers=draft.answers,
            recording_sid=draft.recording.sid if draft.recording else None,
        )
        if request_row is None:
            return CallbackSummary(None, "any", None)
        return CallbackSummary(request_row.phone, request_row.preferred_window or "any", request_row.voicemail_ok,
                               request_row.consent_not_counted)

    def keyed_number() -> str | None:
        if not call_sid:
            return None
        _database()
        return steps_of(db.session, call_sid).answers.get(KEYED_PHONE)

    ctx.finalize_callback = finalize
    # On the way to the crisis line: a database error must not stop that dial.
    ctx.keep_callback = lambda draft: _best_effort("callback request before the crisis line", call_sid,
                                                   lambda _session: finalize(draft))
    ctx.keyed_number = keyed_number
    result = engine.advance(state, given, ctx)
    return _keep(call_sid, state, result, caller)


@bp.post("/dial-result")
def dial_result():
    call_sid = params.sid(request.form.get("CallSid"))
    caller = _caller()
    state = params.state_from(request.args.get("node"), request.args)
    status = params.status(request.form.get("DialCallStatus"))
    # DialBridged: Twilio connected the two calls, which the whisper allows only once the
    # coordinator pressed 1 (or if the whisper itself failed: connected rather than dropped).
    accepted = _bridged(call_sid)
    result = _engine().dial_result(state, status, accepted, call_context(call_sid, caller))
    return _keep(call_sid, state, result, caller)


@bp.post("/whisper")
def whisper():
    """Played to the coordinator's phone; the caller keeps hearing ringing meanwhile."""
    parent = params.sid(request.args.get("call"))
    state = params.state_from(None, request.args)
    return _render(_engine().whisper(parent, state.reason, params.language(request.args)))


@bp.post("/whisper-answer")
def whisper_answer():
    parent = params.sid(request.args.get("call"))
    verbs, accepted = Engine.whisper_answer((request.form.get("Digits") or "").strip())
    if accepted and parent:
        # The coordinator accepted: connect them regardless.
        _best_effort("accepted transfer", parent, lambda session: store.accept_transfer(session, parent))
    return _render(verbs)


@bp.post("/crisis")
def crisis():
    """The crisis key pressed at the database-down message: connect without the database."""
    engine = _engine()
    lang = params.language(request.args)
    call_sid = params.sid(request.form.get("CallSid"))
    ctx = call_context(call_sid, _caller())
    if (request.form.get("Digits") or "").strip() != engine.flow.crisis_key:
        if ctx.is_open:  # another key while waiting for patient services: on to them
            return _render([engine.fallback_dial(lang, ctx)])
        return _render([*(engine.say(code, "system.goodbye") for code in engine.languages_for(lang)), Hangup()])
    if call_sid:
        _best_effort("crisis-line event", call_sid, lambda session: store.log_safety_event(
            session, call_sid, -1, "fallback", lang, ctx.caller_phone, ctx.crisis_number))
    return _render(engine.crisis_verbs(lang, ctx))


@bp.post("/crisis-result")
def crisis_result():
    call_sid = params.sid(request.form.get("CallSid"))
    attempt = params.bounded_int(request.args.get("attempt"), CRISIS_ATTEMPT_LINE, CRISIS_ATTEMPT_PATIENT_SERVICES,
                                 default=CRISIS_ATTEMPT_LINE)
    status = params.status(request.form.get("DialCallStatus"))
    to_patient_services = attempt == CRISIS_ATTEMPT_PATIENT_SERVICES
    bridged = False
    if to_patient_services:
        try:
            bridged = _bridged(call_sid)
        except (SQLAlchemyError, DatabaseUnavailable) as error:  # not known: the crisis numbers again
            _failed(error)
    verbs = _engine().crisis_result(params.language(request.args), attempt, status, call_context(call_sid, _caller()),
                                    bridged=bridged)
    if call_sid and not to_patient_services:  # the safety event keeps the crisis line's own result
        _best_effort("crisis dial result", call_sid,
                     lambda session: store.crisis_dial_finished(session, call_sid, status or "unknown"))
    return _render(verbs)


def _bridged(call_sid: str | None) -> bool:
    """Did the coordinator take the call? Twilio's DialBridged ("true"/"false"); if the request
    does not say, the flag /whisper-answer stored."""
    said = (request.form.get("DialBridged") or "").strip().lower()
    if said in ("true", "false"):
        return said == "true"
    if not call_sid:
        return False
    _database()
    return store.transfer_accepted(db.session, call_sid)


@bp.post("/fallback-result")
def fallback_result():
    status = params.status(request.form.get("DialCallStatus"))
    return _render(_engine().fallback_result(params.language(request.args), status, call_context("", None)))


@bp.post("/recording-status")
def recording_status():
    call_sid = params.sid(request.form.get("CallSid"))
    given = params.input_from(request.form)
    status = params.status(request.form.get("RecordingStatus")) or "completed"
    if call_sid and given.recording is not None:
        _database()
        with _writes() as writer:
            store.save_recording(writer, call_sid, given.recording, status)
    return twiml.empty()


@bp.post("/status")
def status():
    """The number's status callback: closes the call record and queues missed calls."""
    call_sid = params.sid(request.form.get("CallSid"))
    call_status = params.status(request.form.get("CallStatus"))
    if call_sid and call_status:
        _database()
        duration = request.form.get("CallDuration")
        closing = dict(raw_from=request.form.get("From"), caller=_caller(), status=call_status,
                       duration=params.bounded_int(duration, 0, 7 * 24 * 3600) if duration else None, now=now_utc())
        outcome = store.close_settled_call(Autocommit(db.engine), call_sid, **closing)
        if outcome is None:
            flow = _engine().flow
            call = store.finish_call(db.session, call_sid, prompts_version=flow.prompts_version,
                                     main_menu=flow.main_menu, **closing)
            db.session.commit()
            outcome = call.outcome if call is not None else "erased"
        if call_status in store.FINAL_STATUSES:  # one line per call for the operator: no caller data
            log.info("call ended: %s, %s", call_status, outcome or "no outcome", extra={"call_sid": call_sid})
    return twiml.empty()


def unknown_voice_url(error: HTTPException):
    """A signed request to a /voice/ URL we don't serve (a mangled action URL) is sent back to
    the main menu; unsigned, it is refused like any other. Called by the app's 404/405 handler."""
    try:
        verify_twilio_signature()
    except HTTPException as refused:  # 403 unsigned; 413 a body no webhook sends
        return refused
    lang = params.state_from(None, request.args).lang
    target = Target("step", {"node": _engine().flow.main_menu, "lang": lang})
    return _render([Redirect(target)])


@bp.errorhandler(Exception)
def keep_the_caller_going(error: Exception):
    """Whatever broke, Twilio gets TwiML that leads the caller to a person or clear words.
    Only Twilio: a request that did not pass the signature check gets 403, never TwiML."""
    if isinstance(error, HTTPException):
        return error
    if not g.get("twilio_signed"):
        log.warning("rejected a webhook whose signature check failed (%s)", type(error).__name__,
                    extra={"path": request.path})
        return Forbidden()
    try:
        db.session.rollback()
    except SQLAlchemyError:
        pass
    _breaker().observe(error)
    call_sid = params.sid(request.form.get("CallSid"))
    if isinstance(error, DatabaseUnavailable):
        log.warning("database unavailable; answering with the fallback",
                    extra={"call_sid": call_sid, "endpoint": request.endpoint})
    else:
        log.exception("voice webhook failed; answering with the fallback",
                      extra={"call_sid": call_sid, "endpoint": request.endpoint})
    endpoint = request.endpoint or ""
    if endpoint in ("voice.status", "voice.recording_status"):
        return twiml.empty()  # Twilio only needs a 200; the call itself is not waiting on it
    if endpoint == "voice.whisper_answer":
        return twiml.render(_engine().flow, Engine.whisper_answer((request.form.get("Digits") or "").strip())[0])
    if endpoint == "voice.whisper":
        return twiml.empty()  # connect the coordinator rather than drop the caller
    engine = _engine()
    lang = params.language(request.args)
    if endpoint == "voice.incoming":
        lang = None
    elif endpoint == "voice.step":  # at the bilingual greeting no language is chosen yet
        lang = engine.chosen_language(params.state_from((request.view_args or {}).get("node"), request.args))
    return _render(engine.fallback(lang, call_context(call_sid, None)))
