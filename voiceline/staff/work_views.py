"""Working the queue: Next, Claim, Release, logging an attempt, notes, Reopen.

Each view calls one service from voiceline.queue.work and commits once. A QueueError is
something to tell the coordinator in plain words ("Ana is working on this request right
now."): the transaction is rolled back and the message flashed.
"""

from __future__ import annotations

from flask import flash, redirect, url_for

from voiceline.extensions import db
from voiceline.models import now_utc
from voiceline.queue import work
from voiceline.staff.blueprint import address, admin_required, bp, policy, staff
from voiceline.staff.formatting import clinic_time
from voiceline.staff.forms import AttemptForm, NoteForm
from voiceline.staff.queue_views import render_detail


def _done(callback_id: int | None = None, anchor: str | None = None):
    if callback_id is None:
        return redirect(url_for("staff.queue"))
    return redirect(url_for("staff.detail", callback_id=callback_id, _anchor=anchor))


def _failed(exc: work.QueueError, callback_id: int | None):
    db.session.rollback()
    flash(str(exc), "error")
    if isinstance(exc, work.NotFound):
        callback_id = None
    return _done(callback_id)


@bp.post("/next")
def next_request():
    """Open the request I am working on, else claim the highest-priority, longest-waiting
    free request for me and open it."""
    now, rules = now_utc(), policy()
    found = work.next_for(db.session, staff(), now, rules, address=address())
    item = found.request
    message = None if item is not None else work.nothing_to_claim(work.open_counts(db.session, now, rules), rules,
                                                                   clinic_time)
    db.session.commit()
    if item is None:
        flash(message, "info")
        return _done()
    if found.still_mine:
        flash(f"You are still working on request #{item.id}: finish it or release it first.", "info")
    else:
        flash(f"Request #{item.id} is yours now. Others can see you are working on it.", "success")
    return _done(item.id)


@bp.post("/callbacks/<int:callback_id>/claim")
def claim(callback_id: int):
    try:
        work.claim(db.session, callback_id, staff(), now_utc(), policy(), address=address())
    except work.QueueError as exc:
        return _failed(exc, callback_id)
    db.session.commit()
    flash(f"Request #{callback_id} is yours now. Others can see you are working on it.", "success")
    return _done(callback_id)


@bp.post("/callbacks/<int:callback_id>/release")
def release(callback_id: int):
    try:
        work.release(db.session, callback_id, staff(), now_utc(), policy(), address=address())
    except work.QueueError as exc:
        return _failed(exc, callback_id)
    db.session.commit()
    flash(f"Request #{callback_id} is back in the queue for anyone to take.", "success")
    return _done()


def _retry_words(item, now) -> str:
    retry = work.retry_at(item, now, policy())
    return f" Next offers it again after {clinic_time(retry)}." if retry else ""


def _attempt_message(item, outcome: str, now) -> str:
    label = work.OUTCOMES[outcome].label
    if item.status == "open" and not work.OUTCOMES[outcome].unsuccessful:
        return (f"Saved: {label}. Request #{item.id} is back in the queue; they were reached, so this "
                f"call does not count toward closing it as unreachable.{_retry_words(item, now)}")
    if item.status == "open":
        tries = f"{item.unsuccessful_attempts} of {policy().max_attempts}"
        return (f"Saved: {label}. Request #{item.id} is back in the queue "
                f"({tries} tries without reaching them).{_retry_words(item, now)}")
    if item.outcome == work.UNREACHABLE:
        return (f"Saved: {label}. That was try {item.unsuccessful_attempts} without reaching them, "
                f"so request #{item.id} is now closed as unreachable.")
    return f"Saved: {label}. Request #{item.id} is closed."


@bp.post("/callbacks/<int:callback_id>/attempts")
def log_attempt(callback_id: int):
    form = AttemptForm()
    if not form.validate_on_submit():
        flash("The call was not saved yet: " + " ".join(form.outcome.errors or form.note.errors), "error")
        return render_detail(callback_id, attempt_form=form, status=400)
    now = now_utc()
    try:
        item = work.log_attempt(db.session, callback_id, staff(), form.outcome.data, form.note.data,
                                now, policy(), address=address(),
                                expected_attempts=form.expected_attempts(), expected_call=form.call_seen.data)
    except work.AskedAgain as exc:
        # Shown again, with what they chose and wrote, beside the caller's newest answers.
        db.session.rollback()
        flash(str(exc), "error")
        return render_detail(callback_id, attempt_form=form, status=409)
    except work.QueueError as exc:
        return _failed(exc, callback_id)
    message = _attempt_message(item, form.outcome.data, now)
    db.session.commit()
    flash(message, "success")
    return _done()


@bp.post("/callbacks/<int:callback_id>/notes")
def add_note(callback_id: int):
    form = NoteForm()
    if not form.validate_on_submit():
        flash("The note was not added: " + " ".join(form.text.errors), "error")
        return render_detail(callback_id, note_form=form, status=400)
    try:
        work.add_note(db.session, callback_id, staff(), form.text.data, now_utc(), address=address())
    except work.QueueError as exc:
        return _failed(exc, callback_id)
    db.session.commit()
    flash("Note added.", "success")
    return _done(callback_id, "notes")


@bp.post("/callbacks/<int:callback_id>/reopen")
@admin_required
def reopen(callback_id: int):
    try:
        work.reopen(db.session, callback_id, staff(), now_utc(), address=address())
    except work.QueueError as exc:
        return _failed(exc, callback_id)
    db.session.commit()
    flash(f"Request #{callback_id} is open again and back in the queue, with a fresh count of tries.",
          "success")
    return _done(callback_id)
