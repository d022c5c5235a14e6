"""Admin pages: staff accounts, the audit log, and the CSV export of callback requests."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import sqlalchemy as sa
from flask import Response, flash, redirect, render_template, request, url_for

from voiceline import audit, auth
from voiceline.extensions import db
from voiceline.models import AuditEntry, CallbackRequest, StaffUser
from voiceline.queue.export import callback_dicts
from voiceline.staff import words
from voiceline.staff.blueprint import address, admin_required, bp, end_session, paginate, requested_page, staff
from voiceline.staff.formatting import clinic_today, clinic_zone
from voiceline.staff.forms import AuditFiltersForm, ExportForm, PasswordResetForm, StaffAddForm

AUDIT_PER_PAGE = 50


# ---- staff accounts ------------------------------------------------------------------------------
@bp.route("/admin/staff", methods=["GET", "POST"])
@admin_required
def staff_list():
    form = StaffAddForm()
    if form.validate_on_submit():
        try:
            added = auth.add_staff(db.session, form.email.data, form.name.data, form.role.data,
                                   form.password.data, by=staff())
        except auth.AccountError as exc:
            db.session.rollback()
            form.form_errors.append(str(exc))
        else:
            db.session.commit()
            flash(f"Added {added.name} ({added.email}) as {'an admin' if added.is_admin else 'a coordinator'}. "
                  "Give them the password in person or by phone, not by email.", "success")
            return redirect(url_for("staff.staff_list"))
    accounts = db.session.scalars(sa.select(StaffUser).order_by(StaffUser.active.desc(), StaffUser.name)).all()
    status = 400 if form.is_submitted() else 200
    return render_template("staff/admin_staff.html", form=form, accounts=accounts,
                           page_has_errors=status != 200), status


def _set_active(staff_id: int, active: bool):
    account = db.get_or_404(StaffUser, staff_id)
    if account.id == staff().id:
        flash("You cannot disable your own account. Ask another admin.", "error")
        return redirect(url_for("staff.staff_list"))
    auth.set_active(db.session, account, active, by=staff())
    db.session.commit()
    if active:
        flash(f"{account.name} can sign in again.", "success")
    else:
        flash(f"{account.name} is disabled: signed out everywhere, and their requests are back in the queue.",
              "success")
    return redirect(url_for("staff.staff_list"))


@bp.post("/admin/staff/<int:staff_id>/disable")
@admin_required
def staff_disable(staff_id: int):
    return _set_active(staff_id, False)


@bp.post("/admin/staff/<int:staff_id>/enable")
@admin_required
def staff_enable(staff_id: int):
    return _set_active(staff_id, True)


@bp.route("/admin/staff/<int:staff_id>/password", methods=["GET", "POST"])
@admin_required
def staff_password(staff_id: int):
    account = db.get_or_404(StaffUser, staff_id)
    form = PasswordResetForm()
    if form.validate_on_submit():
        try:
            auth.reset_password(db.session, account, form.password.data, by=staff())
        except auth.AccountError as exc:
            db.session.rollback()
            form.form_errors.append(str(exc))
        else:
            if account.id == staff().id:  # my own: this session ends with the old password
                end_session("password_changed")
                flash("Your password is changed. Sign in with the new one.", "success")
                return redirect(url_for("staff.login"))
            db.session.commit()
            flash(f"New password set for {account.name}. They have been signed out everywhere.", "success")
            return redirect(url_for("staff.staff_list"))
    status = 400 if form.is_submitted() else 200
    return render_template("staff/admin_password.html", form=form, account=account,
                           page_has_errors=status != 200), status


# ---- audit log -----------------------------------------------------------------------------------
@bp.get("/admin/audit")
@admin_required
def audit_log():
    form = AuditFiltersForm(formdata=request.args)
    form.validate()
    action = "" if form.action.errors else form.action.data
    page_number = requested_page()
    audit.record(db.session, "view_audit", staff=staff(), address=address(),
                 detail={"action": action or "all", "page": page_number})
    db.session.commit()
    stmt = sa.select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    page = paginate(stmt, page_number, AUDIT_PER_PAGE)
    staff_ids = {entry.staff_id for entry in page.items if entry.staff_id}
    names = dict(db.session.execute(
        sa.select(StaffUser.id, StaffUser.name).where(StaffUser.id.in_(staff_ids))).all()) if staff_ids else {}
    return render_template("staff/audit.html", form=form, page=page, words=words, names=names,
                           args={"action": action} if action else {})


# ---- CSV export ----------------------------------------------------------------------------------
# No recording_url: a file that leaves the app must not carry links that play a caller's voice
# without a sign-in or an audit entry. The recording's id finds it on the request page.
EXPORT_COLUMNS = (
    "id", "phone", "status", "language", "reason", "call_sid", "created_at", "updated_at", "preferred_window",
    "voicemail_ok", "requested_by_caller", "missed", "priority", "answers", "recording_sid",
    "prompts_version", "claimed_by", "claimed_at", "attempts", "closed_at", "outcome", "erased_at",
)


def clinic_day_bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start of `start`, start of the day after `end`) in clinic time, as UTC instants."""
    zone = clinic_zone()
    first = dt.datetime.combine(start, dt.time.min, zone)
    after = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, zone)
    return first.astimezone(dt.UTC), after.astimezone(dt.UTC)


def cell(value) -> str:
    """One CSV cell. Text a spreadsheet would run as a formula (=, +, -, @ first) gets a
    leading apostrophe; E.164 phone numbers, which start with +, stay as they are."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    text = str(value)
    if text[:1] in ("=", "@", "\t", "\r") or (text[:1] in ("+", "-") and not text[1:].isdigit()):
        return "'" + text
    return text


def csv_body(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    for item in rows:
        writer.writerow([cell(item.get(column)) for column in EXPORT_COLUMNS])
    return "\ufeff" + out.getvalue()  # the byte-order mark makes Excel read UTF-8 (Spanish names)


@bp.route("/admin/export", methods=["GET", "POST"])
@admin_required
def export():
    form = ExportForm()
    if not form.is_submitted():
        today = clinic_today()
        form.start.data, form.end.data = today.replace(day=1), today
    if form.validate_on_submit():
        first, after = clinic_day_bounds(form.start.data, form.end.data)
        items = db.session.scalars(
            sa.select(CallbackRequest)
            .where(CallbackRequest.created_at >= first, CallbackRequest.created_at < after)
            .order_by(CallbackRequest.created_at, CallbackRequest.id)).all()
        rows = callback_dicts(db.session, items)
        start, end = form.start.data.isoformat(), form.end.data.isoformat()
        audit.record(db.session, "export", staff=staff(), address=address(),
                     detail={"from": start, "to": end, "rows": len(rows)})
        db.session.commit()
        return Response(csv_body(rows), mimetype="text/csv", headers={
            "Content-Disposition": f'attachment; filename="callback-requests_{start}_to_{end}.csv"'})
    status = 400 if form.is_submitted() else 200
    return render_template("staff/export.html", form=form, page_has_errors=status != 200), status
