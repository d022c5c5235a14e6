"""`voiceline retention purge`: erase what the retention schedule says is no longer needed."""

from __future__ import annotations

import functools
import sys

import click
from flask import current_app
from flask.cli import AppGroup

from voiceline import audit, retention, twilio_api
from voiceline.extensions import db
from voiceline.models import now_utc

retention_cli = AppGroup("retention", help="Erasing callers' health information after RETENTION_DAYS.")


@retention_cli.command("purge")
@click.option("--dry-run", is_flag=True, help="Count what would be erased; erase nothing.")
def purge(dry_run: bool) -> None:
    """Erase the number, answers, voice messages (at Twilio too) and notes of requests closed
    more than RETENTION_DAYS ago, with their calls, and calls that left no request and ended
    that long ago. Open requests are kept. Safe to run at any time and repeatedly, e.g. daily
    from a scheduler; exits 1 if something due had to be kept (Twilio could not delete a
    message), so the scheduler shows it. With RETENTION_DAYS unset it erases nothing new: it
    only finishes requests a stopped run had begun to erase, and exits 1."""
    days = current_app.config["RETENTION_DAYS"]
    result = retention.purge(db.session, now=now_utc(), days=days, dry_run=dry_run,
                             delete_recording=functools.partial(twilio_api.delete_recording, current_app))
    if not dry_run and (days is not None or result.requests):
        audit.record(db.session, "retention_purge", actor="cli", detail={
            "days": days, "requests": result.requests, "calls": result.calls,
            "recordings": result.recordings, "kept": len(result.kept)})
        db.session.commit()
    done = "would be erased (dry run)" if dry_run else "erased"
    counts = (f"{result.requests} request(s), {result.calls} call(s) and {result.recordings} voice "
              f"message(s) {done}")
    for reason in result.kept:
        click.echo(f"kept for the next run: {reason}", err=True)
    if days is None:
        if result.requests:
            click.echo(f"Begun by a run that stopped: {counts}.")
        click.echo(f"voiceline: RETENTION_DAYS is not set, so nothing {'else ' if result.requests else ''}is "
                   "erased. Set it to the number of days to keep a closed request (your retention policy "
                   "says how many).", err=True)
        sys.exit(1)
    click.echo(f"Closed or ended before {result.cutoff:%Y-%m-%d %H:%M} UTC (RETENTION_DAYS={days}): {counts}.")
    if result.kept:
        sys.exit(1)
