"""Reading the queue: the list, one request with its history, its voice message, safety events.

Every look at a caller's record is audited, and nothing is sent before its entry is
committed. The request page records and commits first, then reads: committing expires what
was loaded, and a lazy load after that (several relationships are lazy="raise") would fail
the page. The lists read first, because their entries name what they show: their rows are
plain values, built before the commit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Response, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from itsdangerous import BadSignature, URLSafeTimedSerializer

from voiceline import audit, twilio_api
from voiceline.extensions import db
from voiceline.models import CallbackRequest, Recording, SafetyEvent, StaffUser, now_utc
from voiceline.models.callbacks import OPEN
from voiceline.phones import display, last_four, mask
from voiceline.queue import answers, listing, work
from voiceline.staff import words
from voiceline.staff.blueprint import address, bp, paginate, policy, requested_page, staff
from voiceline.staff.forms import AttemptForm, FindCallerForm, NoteForm, QueueFiltersForm, phone_search

SAFETY_PER_PAGE = 50


@dataclass(frozen=True)
class Row:
    """One line of the queue list, worked out here so the template only prints."""

    id: int
    phone: str  # masked: •••-•••-0123
    last_four: str
    language: str
    not_english: bool  # tagged in the list, so the coordinator who speaks it can pick it out
    reason: str
    missed: bool
    window: str
    summary: str
    created_at: dt.datetime
    closed_at: dt.datetime | None
    overdue: bool
    attempts: int
    open: bool
    outcome: str | None
    holder: str | None
    mine: bool
    retry_at: dt.datetime | None  # Next skips it until then (tried less than RETRY_AFTER_MINUTES ago)
    crisis: bool = False  # this caller pressed the crisis key on some call
    called_from_searched: bool = False  # found by the number they called from, not this one


def ordered(given: dict, questions: dict[str, str]) -> dict:
    """Answers in the order the flow asks them (PostgreSQL's JSONB keeps no key order)."""
    rank = {field: index for index, field in enumerate(questions)}
    return dict(sorted((given or {}).items(), key=lambda item: (rank.get(item[0], len(rank)), item[0])))


def flow_questions() -> dict[str, str]:
    return answers.questions(current_app.extensions["voiceline.flow"])


def is_overdue(item: CallbackRequest, now: dt.datetime) -> bool:
    sla = dt.timedelta(hours=current_app.config["CALLBACK_SLA_HOURS"])
    return item.status == OPEN and item.created_at <= now - sla


def row(item: CallbackRequest, now: dt.datetime, questions: dict[str, str], rules: work.Policy,
        *, crisis: bool = False, called_from_searched: bool = False) -> Row:
    live = work.claim_is_live(item, now, rules)
    holder = item.claimed_by if live else None  # joined by queue_page: no query here
    return Row(
        id=item.id, phone="Erased" if item.erased else mask(item.phone), last_four=last_four(item.phone),
        language=answers.LANGUAGES.get(item.language, item.language), not_english=item.language != "en",
        reason=answers.reason_words(item.reason), missed=item.missed,
        window=answers.WINDOWS.get(item.preferred_window or "", "Not given"),
        summary=answers.summary(ordered(item.answers, questions)), created_at=item.created_at,
        closed_at=item.closed_at,
        overdue=is_overdue(item, now), attempts=item.attempts, open=item.status == OPEN,
        outcome=work.FINAL_OUTCOME_LABELS.get(item.outcome or "", item.outcome),
        holder=holder.name if holder is not None else None,
        mine=holder is not None and holder.id == current_user.id,
        retry_at=work.retry_at(item, now, rules),
        crisis=crisis, called_from_searched=called_from_searched,
    )


# Find a caller posts the number (never in a URL), then redirects to the results: a GET that
# Back returns to without the browser's "Confirm Form Resubmission". Its address carries what
# was found, signed: the request ids, which of them were found by the number called from,
# the total, and the last four digits searched (as logs show numbers); for this coordinator
# only, for as long as a session lasts without activity.
FOUND_SALT = "voiceline.staff.find-caller"


def _found_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=FOUND_SALT)


def _found_token(page: listing.Page, wanted: str) -> str:
    return _found_serializer().dumps({
        "staff": staff().id, "ids": [item.id for item in page.items], "total": page.total,
        "called_from": [item.id for item in page.items if not listing.phone_is(item.phone, wanted)],
        "last4": last_four(wanted),
    })


@dataclass(frozen=True)
class Found:
    ids: list[int]
    called_from: set[int]
    total: int
    last4: str


def _found(token: str) -> Found | None:
    """What a search found, or None if the token is forged, expired or someone else's."""
    try:
        data = _found_serializer().loads(token, max_age=current_app.config["SESSION_IDLE_MINUTES"] * 60)
        found = Found([int(i) for i in data["ids"]], {int(i) for i in data["called_from"]}, int(data["total"]),
                      str(data["last4"]))
    except (BadSignature, KeyError, TypeError, ValueError):
        return None
    return found if data.get("staff") == staff().id else None


@bp.route("/", methods=["GET", "POST"])
def queue():
    """The queue; a POST finds a caller by phone number, in every status, on one page (shown
    by the GET it redirects to)."""
    form = QueueFiltersForm(formdata=request.args)
    form.validate()
    searching = request.method == "POST"
    find = FindCallerForm() if searching else FindCallerForm(formdata=None)
    wanted = phone_search(find.phone.data) if searching and find.validate() else None
    now = now_utc()
    rules = policy()
    if wanted:
        page = listing.queue_page(db.session, listing.Filters(status="all", phone=wanted), staff(), now, rules)
        return redirect(url_for("staff.queue", found=_found_token(page, wanted)), 303)
    token = None if searching else request.args.get("found")
    found = _found(token) if token else None
    if token and found is None:
        flash("That search has expired: find the caller again.", "info")
    if found is not None:
        filters = listing.Filters(status="all", phone=found.last4)
        page_number = 1
        page = listing.Page(listing.requests_by_id(db.session, found.ids), 1, listing.PER_PAGE, found.total)
    else:
        filters = listing.Filters(status=form.value("status"), reason=form.value("reason") or None,
                                  language=form.value("language") or None, mine=bool(form.value("mine")))
        page_number = requested_page()
        page = listing.queue_page(db.session, filters, staff(), now, rules, page=page_number)
    questions = flow_questions()
    crisis = listing.crisis_callers(db.session, page.items)
    rows = [row(item, now, questions, rules, crisis=item.id in crisis,
                called_from_searched=found is not None and item.id in found.called_from)
            for item in page.items]
    # The audit log keeps what was searched for as lists do (the last four digits), and which
    # requests the page showed.
    shown = {"status": filters.status, "reason": filters.reason, "language": filters.language,
             "mine": filters.mine or None, "phone": mask(filters.phone) if filters.phone else None,
             "page": page_number, "callback_ids": [r.id for r in rows]}
    audit.record(db.session, "list_callbacks", staff=staff(), address=address(),
                 detail={k: v for k, v in shown.items() if v is not None})
    db.session.commit()
    args = {k: v for k, v in {"status": filters.status, "reason": filters.reason, "language": filters.language,
                              "mine": "y" if filters.mine else None}.items() if v}
    return render_template("staff/queue.html", form=form, find=find, filters=filters, page=page, now=now,
                           rows=rows, args=args,
                           searched=found.last4 if found is not None else None, page_has_errors=bool(find.errors),
                           sla_hours=current_app.config["CALLBACK_SLA_HOURS"],
                           retry_minutes=current_app.config["RETRY_AFTER_MINUTES"]), 400 if find.errors else 200


# ---- one request ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Message:
    sid: str
    current: bool
    created_at: dt.datetime | None
    duration_seconds: int | None
    problem: str | None


def messages(item: CallbackRequest, recordings: list[Recording]) -> list[Message]:
    """This request's voice message first, then any left on earlier calls from the phone."""
    by_sid = {r.recording_sid: r for r in recordings}
    sids = ([item.recording_sid] if item.recording_sid else []) + [
        r.recording_sid for r in recordings if r.recording_sid != item.recording_sid]
    out = []
    for sid in sids:
        rec = by_sid.get(sid)
        out.append(Message(sid, sid == item.recording_sid, rec.created_at if rec else None,
                           rec.duration_seconds if rec else None,
                           words.RECORDING_STATUSES.get(rec.status) if rec else None))
    return out


def render_detail(callback_id: int, *, attempt_form: AttemptForm | None = None,
                  note_form: NoteForm | None = None, status: int = 200):
    """The detail page (also re-shown, with the form's errors, when a form on it was not valid)."""
    item = db.get_or_404(CallbackRequest, callback_id)
    now, me, rules = now_utc(), staff(), policy()
    work.keep_claim(db.session, item, me, now, rules, address=address())
    audit.record(db.session, "view_callback", staff=me, callback_id=callback_id, address=address())
    db.session.commit()

    history = listing.history(db.session, item)
    questions = flow_questions()
    live = work.claim_is_live(item, now, rules)
    holder = history.claimed_by if live else None
    mine = holder is not None and holder.id == me.id
    # An open request's number is for whoever holds it: anyone else might call them too. So is
    # the number of any open request on this page (this one, or another of the same caller's,
    # seen from a closed one): shown in full only to its holder.
    guarded = {other.phone for other in (item, *history.other_requests)
               if other.status == OPEN and not (work.claim_is_live(other, now, rules) and other.claimed_by_id == me.id)}
    number_shown = item.phone not in guarded
    closed_by = db.session.get(StaffUser, item.closed_by_id) if item.closed_by_id else None
    given = ordered(item.answers, questions)

    def shown(number: str) -> str:
        return display(number) if number_shown and number not in guarded else mask(number)

    attempt_form = attempt_form or AttemptForm(formdata=None)
    if attempt_form.expected_attempts() is None:
        attempt_form.attempts_seen.data = str(item.attempts)
    attempt_form.call_seen.data = item.call_sid or ""  # what this page shows is what a save answers to
    return render_template(
        "staff/detail.html", item=item, history=history, now=now, words=words,
        phone=display(item.phone) if number_shown else mask(item.phone), number_shown=number_shown,
        last_four=last_four(item.phone), language=answers.LANGUAGES.get(item.language, item.language),
        reason=answers.reason_words(item.reason),
        window=answers.WINDOWS.get(item.preferred_window or "", "Not given"),
        answers=[(questions.get(field, field.replace("_", " ").capitalize()),
                  words.first_upper(answers.value_words(value))) for field, value in given.items()],
        overdue=is_overdue(item, now), holder=holder, mine=mine, closed_by=closed_by,
        can_work=item.status == OPEN and mine,
        can_release=item.status == OPEN and holder is not None and (mine or me.is_admin),
        outcome=work.FINAL_OUTCOME_LABELS.get(item.outcome or "", item.outcome),
        max_attempts=rules.max_attempts, outcome_labels=work.FINAL_OUTCOME_LABELS,
        outcome_effects={key: words.outcome_effect(o) for key, o in work.OUTCOMES.items()},
        claim_minutes=current_app.config["CLAIM_TIMEOUT_MINUTES"],
        retry_at=work.retry_at(item, now, rules),
        messages=messages(item, history.recordings),
        playback=bool(current_app.config["TWILIO_ACCOUNT_SID"]),
        other_requests=[(other, answers.reason_words(other.reason), shown(other.phone))
                        for other in history.other_requests],
        open_elsewhere=[other for other in history.other_requests if other.status == OPEN],
        called_from=next((shown(call.caller) for call in history.calls
                          if call.call_sid == item.call_sid and call.caller and call.caller != item.phone), None),
        languages=answers.LANGUAGES, attempt_form=attempt_form,
        note_form=note_form or NoteForm(formdata=None), page_has_errors=status != 200,
    ), status


@bp.get("/callbacks/<int:callback_id>")
def detail(callback_id: int):
    return render_detail(callback_id)


# Safari asks for the first two bytes of audio before it asks for the rest from byte 0.
PROBE_BYTES = 2
# A range from further in, asked for by someone whose play of the same request's message was
# audited this recently, continues that play (the rest of it, or a seek).
SAME_PLAY = dt.timedelta(minutes=30)


def starts_a_play(callback_id: int) -> bool:
    """This request is a look at the message to audit: the whole file, a range from its first
    byte (not Safari's two-byte probe), or a range from further in that no audited play of this
    person's in the last SAME_PLAY continues (a range alone, bytes=1-, is nearly all of it)."""
    ranges = request.range
    if ranges is None:  # no Range header (or one the response ignores): the whole file
        return True
    start, stop = ranges.ranges[0]
    if start == 0:
        return stop is None or stop > PROBE_BYTES
    return not audit.looked_recently(db.session, "play_recording", staff(), callback_id, now_utc() - SAME_PLAY)


@bp.get("/callbacks/<int:callback_id>/recordings/<recording_sid>")
def recording(callback_id: int, recording_sid: str):
    """The voice message, fetched from Twilio with the account's credentials and passed on:
    staff never see (or need) the Twilio URL. Audited once per play, once it was fetched (a
    fetch that failed is audited as that)."""
    item = db.get_or_404(CallbackRequest, callback_id)
    if not listing.recording_belongs(db.session, item, recording_sid):
        return render_template("staff/error.html", title="No such message",
                               message="This request has no voice message with that name."), 404
    played = {"staff": staff(), "callback_id": callback_id, "address": address(),
              "detail": {"recording_sid": recording_sid}}
    try:
        audio = twilio_api.recording_audio(current_app, recording_sid)
    except twilio_api.RecordingUnavailable as exc:
        current_app.logger.warning("recording unavailable: %s", exc,
                                   extra={"callback_id": callback_id, "recording_sid": recording_sid})
        if starts_a_play(callback_id):
            audit.record(db.session, "play_recording_failed", **played)
            db.session.commit()
        return render_template("staff/error.html", title="The voice message cannot be played right now",
                               message="It could not be fetched from Twilio just now. Try again in a few "
                                       "minutes; if it keeps happening, tell an admin.",
                               detail=str(exc), back=callback_id), 503
    if starts_a_play(callback_id):
        audit.record(db.session, "play_recording", **played)
        db.session.commit()
    response = Response(audio, mimetype="audio/mpeg",
                        headers={"Content-Disposition": f'inline; filename="message-{callback_id}.mp3"'})
    # Byte ranges: Safari (iPads at the front desk) will not play audio served without them.
    return response.make_conditional(request, accept_ranges=True, complete_length=len(audio))


# ---- safety events -------------------------------------------------------------------------------
@bp.get("/safety-events")
def safety_events():
    page_number = requested_page()
    page = paginate(sa.select(SafetyEvent).order_by(SafetyEvent.at.desc(), SafetyEvent.id.desc()),
                    page_number, SAFETY_PER_PAGE)
    phones = {event.caller for event in page.items if event.caller}
    requests: dict[str, int] = {}
    if phones:  # one query for the page: the newest request from each phone
        for phone, callback_id in db.session.execute(
                sa.select(CallbackRequest.phone, CallbackRequest.id).where(CallbackRequest.phone.in_(phones))
                .order_by(CallbackRequest.created_at)):
            requests[phone] = callback_id
    events = [{"at": e.at, "caller": mask(e.caller), "last_four": last_four(e.caller),
               "language": answers.LANGUAGES.get(e.language or "", "Not chosen"), "dialed": e.dialed,
               "status": words.dial_status(e.dial_status), "callback_id": requests.get(e.caller or "")}
              for e in page.items]
    audit.record(db.session, "view_safety_events", staff=staff(), address=address(),
                 detail={"page": page_number, "event_ids": [e.id for e in page.items]})
    db.session.commit()
    return render_template("staff/safety.html", page=page, events=events)
