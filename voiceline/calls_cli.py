"""`voiceline calls list`: what happened on each call, including calls that left no callback;
`voiceline calls finish-stale`: close calls whose status callback never came."""

from __future__ import annotations

import datetime as dt
import json

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import AppGroup

from voiceline import audit
from voiceline.extensions import db
from voiceline.call_history import steps_of_calls
from voiceline.models import Call, now_utc
from voiceline.phones import mask
from voiceline.staff.words import CALL_OUTCOMES
from voiceline.voice.store import finish_stale_calls

calls_cli = AppGroup("calls", help="Calls to the line and what happened on them.")


@calls_cli.command("list")
@click.option("--hours", type=click.IntRange(1, 24 * 90), default=24, show_default=True,
              help="Calls that started within this many hours.")
@click.option("--outcome", type=click.Choice(sorted(CALL_OUTCOMES)), default=None,
              help="Only calls with this outcome.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (full phone numbers).")
def list_calls(hours: int, outcome: str | None, as_json: bool) -> None:
    """List recent calls with their outcome and the path through the flow."""
    since = now_utc() - dt.timedelta(hours=hours)
    stmt = sa.select(Call).where(Call.started_at >= since).order_by(Call.started_at)
    if outcome:
        stmt = stmt.where(Call.outcome == outcome)
    calls = db.session.scalars(stmt).all()
    paths = {sid: steps.path for sid, steps in steps_of_calls(db.session, [c.call_sid for c in calls]).items()}
    audit.record(db.session, "list_calls", actor="cli", detail={
        "hours": hours, "count": len(calls), "call_ids": [c.id for c in calls], "system_user": audit.system_user()})
    db.session.commit()
    out = [{
        "call_sid": c.call_sid, "caller": c.caller, "caller_id_status": c.caller_id_status,
        "language": c.language, "started_at": c.started_at.isoformat(),
        "ended_at": c.ended_at.isoformat() if c.ended_at else None, "duration_seconds": c.duration_seconds,
        "twilio_status": c.twilio_status, "outcome": c.outcome, "callback_id": c.callback_id,
        "transfer_accepted": c.transfer_accepted_at is not None, "prompts_version": c.prompts_version,
        "path": paths[c.call_sid],
    } for c in calls]
    if as_json:
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))
        return
    if not out:
        click.echo("No calls in that period.")
    for row in out:
        click.echo(f"{row['started_at'][:19]} {row['call_sid']} {mask(row['caller']):<14} "
                   f"{row['language'] or '-':<3} {row['outcome'] or '-':<20} {' > '.join(row['path'])}")


@calls_cli.command("finish-stale")
@click.option("--hours", type=click.IntRange(4, 24 * 90), default=4, show_default=True,
              help="Calls that started more than this many hours ago (Twilio ends calls after 4).")
def finish_stale(hours: int) -> None:
    """Close calls whose status callback never arrived (it was lost while the database was down):
    each gets its outcome from its steps, and a missed call lands in the queue as it would have.
    Safe to run at any time and repeatedly, e.g. hourly from a scheduler."""
    flow = current_app.extensions["voiceline.engine"].flow
    calls = finish_stale_calls(db.session, started_before=now_utc() - dt.timedelta(hours=hours),
                               main_menu=flow.main_menu)
    queued = sum(1 for call in calls if call.outcome == "missed")
    audit.record(db.session, "finish_stale_calls", actor="cli", detail={"calls": len(calls), "missed": queued})
    db.session.commit()
    click.echo(f"{len(calls)} call(s) closed without a status callback; {queued} of them queued as missed.")
