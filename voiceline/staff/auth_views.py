"""Signing in and out. The throttle, the password check and their audit entries are in
voiceline.auth; this module turns them into pages and a fresh session."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user

from voiceline import auth
from voiceline.extensions import db
from voiceline.models import now_utc
from voiceline.staff.blueprint import address, bp, end_session, safe_next, start_session
from voiceline.staff.formatting import wait_words
from voiceline.staff.forms import SignInForm


@bp.route("/sign-in", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("staff.queue"))
    form = SignInForm()
    error = wait = None
    if form.validate_on_submit():
        email, now = form.email.data, now_utc()
        result = auth.start_sign_in(db.session, email, address(), now)
        db.session.commit()  # the try is counted before its password is checked, for every worker to see
        if result is None:
            result = auth.finish_sign_in(db.session, email, form.password.data, address(), now)
            db.session.commit()  # the audit entry is kept either way
        if result.staff is not None:
            start_session(result.staff)
            flash(f"Signed in. Welcome, {result.staff.name}.", "success")
            return redirect(safe_next(request.args.get("next")) or url_for("staff.queue"))
        error = result.error
        wait = wait_words(result.wait) if result.wait else None
    status = 200 if error is None else (429 if wait else 401)
    return render_template("staff/login.html", form=form, error=error, wait=wait,
                           page_has_errors=bool(error or form.errors)), status


@bp.post("/sign-out")
def logout():
    """POST with a CSRF token, so another site cannot sign someone out."""
    end_session("signed_out")
    flash("You are signed out.", "success")
    return redirect(url_for("staff.login"))
