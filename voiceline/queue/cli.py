"""`voiceline callbacks ...`: the callback queue from the terminal.

The same services as the staff pages, so the same rules: atomic claims, attempt outcomes,
and an audit entry for each look and change (actor "cli" or "cli:<email>").
"""

from __future__ import annotations

import json

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import AppGroup

from voiceline import audit, auth
from voiceline.extensions import db
from voiceline.models import CallbackRequest, StaffUser, now_utc
from voiceline.models.callbacks import STATUSES
from voiceline.phones import mask
from voiceline.queue import work
from voiceline.queue.export import callback_dicts
from voiceline.staff.formatting import clinic_time

callbacks_cli = AppGroup("callbacks", help="The callback queue.")


@callbacks_cli.command("list")
@click.option("--status", type=click.Choice(STATUSES), default=None, help="Only requests with this status.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (full phone numbers).")
def list_callbacks(status: str | None, as_json: bool) -> None:
    """List callback requests, oldest first."""
    stmt = sa.select(CallbackRequest).order_by(CallbackRequest.created_at, CallbackRequest.id)
    if status:
        stmt = stmt.where(CallbackRequest.status == status)
    rows = callback_dicts(db.session, db.session.scalars(stmt).all())
    audit.record(db.session, "list_callbacks", actor="cli", detail={
        "status": status or "all", "count": len(rows), "callback_ids": [row["id"] for row in rows],
        "system_user": audit.system_user()})
    db.session.commit()
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo("No callback requests.")
        return
    for row in rows:
        click.echo(f"#{row['id']:<5} {row['status']:<7} {mask(row['phone']):<14} {row['language']:<3} "
                   f"{row['reason']:<17} {row['preferred_window'] or '-':<10} {row['created_at']}")


def _staff(email: str) -> StaffUser:
    try:
        staff = auth.find_staff(db.session, email)
    except auth.AccountError as exc:
        raise click.ClickException(str(exc)) from None
    if not staff.active:
        raise click.ClickException(f"{staff.email} is disabled.")
    return staff


def _policy() -> work.Policy:
    return work.Policy.from_config(current_app.config)


def _show(request: CallbackRequest, staff: StaffUser) -> None:
    """Print the whole record, and audit the look (as the request page does for every view):
    a renewed claim prints it too, and a renewal is not audited as a claim."""
    audit.record(db.session, "view_callback", staff=staff, actor=f"cli:{staff.email}", callback_id=request.id)
    db.session.commit()
    click.echo(json.dumps(callback_dicts(db.session, [request])[0], indent=2, ensure_ascii=False))


staff_option = click.option("--staff", "staff_email", required=True, help="The coordinator's email.")


@callbacks_cli.command("claim")
@click.argument("callback_id", type=int)
@staff_option
def claim(callback_id: int, staff_email: str) -> None:
    """Claim one request for a coordinator (fails if someone else has it)."""
    staff = _staff(staff_email)
    try:
        request = work.claim(db.session, callback_id, staff, now_utc(), _policy(), actor=f"cli:{staff.email}")
    except work.QueueError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    _show(request, staff)


@callbacks_cli.command("next")
@staff_option
def next_request(staff_email: str) -> None:
    """Claim the highest-priority, oldest unclaimed request and show it (or the one the
    coordinator is still working on)."""
    staff = _staff(staff_email)
    now, rules = now_utc(), _policy()
    found = work.next_for(db.session, staff, now, rules, actor=f"cli:{staff.email}")
    message = None if found.request is not None else work.nothing_to_claim(
        work.open_counts(db.session, now, rules), rules, clinic_time)
    db.session.commit()
    if found.request is None:
        click.echo(message)
        return
    if found.still_mine:
        click.echo(f"Still working on request #{found.request.id}: finish it or release it first.", err=True)
    _show(found.request, staff)


@callbacks_cli.command("attempt")
@click.argument("callback_id", type=int)
@click.option("--outcome", required=True, type=click.Choice(list(work.OUTCOMES)))
@staff_option
@click.option("--note", default=None, help="Free text kept with the attempt.")
def attempt(callback_id: int, outcome: str, staff_email: str, note: str | None) -> None:
    """Log a call attempt and its outcome (claiming the request first if it is free)."""
    staff = _staff(staff_email)
    try:
        work.claim(db.session, callback_id, staff, now_utc(), _policy(), actor=f"cli:{staff.email}")
        request = work.log_attempt(db.session, callback_id, staff, outcome, note, now_utc(), _policy(),
                                   actor=f"cli:{staff.email}")
    except work.QueueError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    _show(request, staff)
