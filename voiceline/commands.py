"""Commands that need the app: `voiceline simulate`, `voiceline twiml fallback`; registers the rest
(callbacks, staff, calls, retention)."""

from __future__ import annotations

import datetime as dt
import logging
import xml.etree.ElementTree as ET

import click
from flask import Flask
from flask.cli import AppGroup, ScriptInfo

from voiceline.hours import BusinessHours
from voiceline.models import now_utc
from voiceline.calls_cli import calls_cli
from voiceline.queue.cli import callbacks_cli
from voiceline.retention_cli import retention_cli
from voiceline.simulate import Caller, DialOutcome, SimulatedCall
from voiceline.staff_cli import staff_cli
from voiceline.voice import twiml

class TerminalCaller(Caller):
    """You, at the keyboard, as the caller (and as patient services when a transfer rings)."""

    def __init__(self, auto_language: str | None, crisis_numbers: set[str]):
        self.auto_language = auto_language
        self.crisis_numbers = crisis_numbers

    def hear(self, text: str, lang: str) -> None:
        click.echo(click.style(f"  [{lang or '--'}] ", fg="cyan") + text)

    def note(self, text: str) -> None:
        click.echo(click.style(f"  ({text})", fg="yellow"))

    def keys(self, gather: ET.Element):
        if self.auto_language and "/voice/step/welcome" in (gather.get("action") or ""):
            key = "2" if self.auto_language == "es" else "1"
            self.auto_language = None
            self.note(f"pressing {key} for {'español' if key == '2' else 'English'}")
            return ("digits", key)
        speech = "speech" in (gather.get("input") or "")
        hint = "keys, or s:<words> to speak" if speech else "keys"
        answer = click.prompt(click.style(f"  press {hint} (Enter = silence, q = hang up)", fg="green"),
                              default="", show_default=False).strip()
        if answer.lower() == "q":
            raise click.Abort()
        if speech and answer.startswith("s:"):
            return ("speech", answer[2:].strip())
        return ("digits", answer) if answer else None

    def dial(self, number: str, whisper: list[str]) -> DialOutcome:
        if number in self.crisis_numbers:
            self.note(f"dialling {number}: connected to the crisis line (simulated); the call with them ends")
            return DialOutcome("completed")
        self.note(f"ringing patient services at {number}")
        for text in whisper:
            click.echo(click.style("  [coordinator hears] ", fg="magenta") + text)
        choice = click.prompt(click.style("  patient services: [a]ccept, [b]usy, [n]o answer, [v]oicemail", fg="green"),
                              type=click.Choice(["a", "b", "n", "v"]), default="b")
        return {"a": DialOutcome("completed", accept=True), "b": DialOutcome("busy"),
                "n": DialOutcome("no-answer"), "v": DialOutcome("completed", accept=False, duration=20)}[choice]

    def record(self) -> str | None:
        words = click.prompt(click.style("  (beep) type your message, Enter = say nothing", fg="green"),
                             default="", show_default=False).strip()
        return words or None


@click.command("simulate")
@click.option("--lang", type=click.Choice(["en", "es"]), default=None, help="Choose this language at the greeting.")
@click.option("--from", "from_number", default="+16175550123", show_default=True, help="Caller ID (or 'anonymous').")
@click.option("--closed", is_flag=True, help="Act as if patient services were closed now.")
@click.option("--open", "force_open", is_flag=True, help="Act as if patient services were open now.")
def simulate(lang: str | None, from_number: str, closed: bool, force_open: bool) -> None:
    """Make a call in the terminal: hear the prompts, press keys, end with a stored request."""
    # No app context is held while the call runs: each simulated webhook gets its own, as
    # each real one does (and so its own database session).
    app: Flask = click.get_current_context().ensure_object(ScriptInfo).load_app()
    logging.getLogger("voiceline").setLevel(logging.WARNING)  # the transcript, not log lines
    if closed or force_open:
        pretend_hours(app, want_open=force_open)
    caller = TerminalCaller(lang, {app.config["CRISIS_LINE_NUMBER"], app.config["CRISIS_LINE_FALLBACK_NUMBER"]})
    call = SimulatedCall(app, caller, from_number=from_number)
    click.echo(f"Calling the line as {from_number} (CallSid {call.call_sid}). Signed requests, real database.")
    try:
        call.run()
    except click.Abort:
        caller.note("you hung up")
        call.hang_up()
    click.echo(f"Call ended after {len(call.requests)} webhook requests. "
               "See stored requests with: voiceline callbacks list")


def pretend_hours(app: Flask, *, want_open: bool) -> None:
    """Move the line's clock to the next moment that patient services is open (or closed),
    so the simulation hears the real schedule; fall back to 24/7 or closed if there is none."""
    hours = app.config["BUSINESS_HOURS"]
    start = now_utc()
    for minutes in range(0, 15 * 24 * 60, 30):
        moment = start + dt.timedelta(minutes=minutes)
        if hours.is_open(moment) == want_open:
            if minutes:
                app.extensions["voiceline.clock"] = lambda: moment + (now_utc() - start)
                local = hours.local(moment).strftime("%A %H:%M")
                click.echo(click.style(f"  (pretending it is {local}, clinic time)", fg="yellow"))
            else:  # the real time will do; undo any earlier pretence
                app.extensions["voiceline.clock"] = now_utc
            return
    app.config["BUSINESS_HOURS"] = BusinessHours.parse("24/7" if want_open else "closed", hours.tz)


twiml_cli = AppGroup("twiml", help="TwiML to host outside this app.")


@twiml_cli.command("fallback")
def fallback_twiml() -> None:
    """Print TwiML for the number's Fallback URL (paste it into a TwiML Bin).

    Twilio requests the Fallback URL when this app fails to answer; a fallback served by
    this same app would be down with it. Re-run after changing hours or prompts.
    """
    from flask import current_app

    from voiceline.voice.views import call_context

    engine = current_app.extensions["voiceline.engine"]
    with current_app.test_request_context():
        ctx = call_context("", None)
        ctx.now = now_utc().replace(year=2000, month=1, day=3)  # a plain Monday: no holiday note
        click.echo(twiml.build(engine.flow, engine.static_fallback(ctx)))


def register(app: Flask) -> None:
    app.cli.add_command(callbacks_cli)
    app.cli.add_command(staff_cli)
    app.cli.add_command(calls_cli)
    app.cli.add_command(retention_cli)
    app.cli.add_command(simulate)
    app.cli.add_command(twiml_cli)
