"""Whole calls to replay: recorded once, in process, with `voiceline.simulate.SimulatedCall`.

A call's webhooks depend on the TwiML (action URLs carry ?lang=..&step=..), so each scenario
is played once against the real app (in process, on a throwaway SQLite database, line closed)
and its exact request sequence is kept as a template: path + query, form fields, and a short
marker the response must contain (the next request's action URL, or <Hangup/> ...). The load
generator then replays the template for many calls, each with a fresh CallSid, its own caller
ID and RecordingSid, re-signed per call (the signature covers URL + every form field).

The recording also yields what one call of each scenario must leave in the database (rows in
calls, call_events, recordings, callbacks; reason; outcome) so the run can be reconciled.
"""

from __future__ import annotations

import html
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

# Placeholders substituted per call by the load generator.
CALL_SID, FROM, REC_SID = "{CallSid}", "{From}", "{RecordingSid}"

# What Twilio really sends with every voice webhook besides the fields the simulator sets
# (the app ignores these, but they make each body the size a real webhook has, ~700-900
# bytes, and the signature covers them all).
TWILIO_EXTRA_FIELDS = {
    "ApiVersion": "2010-04-01",
    "Called": "+18885550100", "CalledCity": "", "CalledCountry": "US", "CalledState": "", "CalledZip": "",
    "Caller": FROM, "CallerCity": "BOSTON", "CallerCountry": "US", "CallerState": "MA", "CallerZip": "02108",
    "FromCity": "BOSTON", "FromCountry": "US", "FromState": "MA", "FromZip": "02108",
    "ToCity": "", "ToCountry": "US", "ToState": "", "ToZip": "",
}
GATHER_EXTRA_FIELDS = {"FinishedOnKey": "", "msg": "Gather End"}

# Production refuses a short SECRET_KEY and requires a patient services number (a fictional one).
BENCH_SECRET_KEY = "bench-secret-key-" + "0123456789abcdef"
PATIENT_SERVICES_NUMBER = "+16175550100"


@dataclass(frozen=True)
class ScenarioSpec:
    name: str
    weight: int
    script: tuple[str, ...]  # ScriptedCaller answers; "hangup" ends the call there
    description: str


SCENARIOS = (
    ScenarioSpec(
        "capture_recording_en", 6,
        ("1",                      # English
         "1",                      # new patient: am I a candidate?
         "1", "2", "1", "2", "2",  # five prescreen answers -> closed -> callback capture
         "1",                      # call me at the number I'm calling from
         "2",                      # afternoon
         "2",                      # voicemail may not name the clinic
         "1",                      # leave a message -> <Record>
         "rec:hello this is a message please call me back about the infusion"),
        "EN: menu 1, five prescreen answers, caller ID confirmed, window, voicemail, "
        "message recorded (Record action + recording status callback), status completed"),
    ScenarioSpec(
        "insurance_speech_es", 2,
        ("2",            # Spanish
         "2",            # insurance and cost
         "1", "1",       # use insurance, commercial plan
         "say:Aetna",    # carrier, spoken (SpeechResult)
         "1", "3", "1",  # caller ID, evening, voicemail may name the clinic
         "2"),           # no message
        "ES: insurance, plan, spoken carrier, callback capture without a message, status completed"),
    ScenarioSpec(
        "missed_call_en", 2,
        ("1",            # English
         "3",            # what to expect (info + its menu)
         "hangup"),      # hangs up: the status callback queues a missed call
        "EN: what-to-expect info, hangs up at its menu; status callback queues a missed call"),
)


class _HangUp(Exception):
    pass


def record(app_root: Path, token: str, workdir: Path | None = None) -> dict:
    """Play each scenario once in process; return the plan the load generator replays."""
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from voiceline import create_app, init_migrations
    from voiceline.extensions import db
    from voiceline.models import Call as CallRow
    from voiceline.models import CallbackRequest, CallEvent, Recording
    from voiceline.simulate import ScriptedCaller, SimulatedCall

    class Caller(ScriptedCaller):
        def keys(self, gather):
            if self.script and self.script[0] == "hangup":
                raise _HangUp
            return super().keys(gather)

    class Call(SimulatedCall):
        """Keeps each response document, to pick what replayed responses must contain."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.documents = []
            self.statements = []

        def post(self, url, data):
            before = statements["n"]
            document = super().post(url, data)
            self.documents.append(document)
            self.statements.append(statements["n"] - before)
            return document

    workdir = workdir or Path(tempfile.mkdtemp(prefix="voiceline-bench-record-"))
    config = {
        "VOICELINE_ENV": "production", "SECRET_KEY": BENCH_SECRET_KEY, "TWILIO_AUTH_TOKEN": token,
        "PATIENT_SERVICES_NUMBER": PATIENT_SERVICES_NUMBER,
        "DATABASE_URL": f"sqlite:///{workdir / 'record.db'}", "BUSINESS_HOURS": "closed",
        "LOG_LEVEL": "WARNING", "PROMPTS_DIR": str(app_root / "prompts"),
    }
    app = create_app(config)
    init_migrations(app)
    with app.app_context():
        upgrade()
        engine = db.engine
        engine.dispose()  # every connection from here on is counted
    statements = {"n": 0}

    def count(sql: str) -> None:  # SQL statements each webhook sends, by SQLAlchemy or on its own
        if not sql.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "PRAGMA")):
            statements["n"] += 1

    @sa.event.listens_for(engine, "connect")
    def trace(dbapi_connection, _record):  # sqlite3 reports every statement the connection runs
        dbapi_connection.set_trace_callback(count)
    from_number = "+16175550123"
    scenarios = []
    for spec in SCENARIOS:
        call = Call(app, Caller(list(spec.script)), from_number=from_number)
        try:
            call.run()
        except _HangUp:
            call.hang_up()
        recording_sids = {data["RecordingSid"] for _, data, _ in call.requests if "RecordingSid" in data}
        if len(recording_sids) > 1:
            raise RuntimeError(f"{spec.name}: more than one recording per call is not supported")
        rec_sid = next(iter(recording_sids), None)

        def template(value: str) -> str:
            value = value.replace(call.call_sid, CALL_SID).replace(from_number, FROM)
            return value.replace(rec_sid, REC_SID) if rec_sid else value

        steps = []
        urls = [urlsplit(url) for url, _, _ in call.requests]
        for index, (url, data, status) in enumerate(call.requests):
            if status != 200:
                raise RuntimeError(f"{spec.name}: {url} answered {status} while recording")
            parts = urls[index]
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            fields = dict(data)
            if "From" in fields:  # a call webhook (not the recording status callback)
                fields.update({k: v for k, v in TWILIO_EXTRA_FIELDS.items() if k not in fields})
                if "Digits" in fields or "SpeechResult" in fields:
                    fields.update({k: v for k, v in GATHER_EXTRA_FIELDS.items() if k not in fields})
                    if "Digits" in fields:
                        fields["FinishedOnKey"] = "#" if fields["Digits"] == "#" else ""
            steps.append({
                "path": path,
                "fields": [[k, template(v)] for k, v in fields.items()],
                "label": _label(path),
                "sql_statements": call.statements[index],
                "marker": _marker(call.documents[index], urls[index + 1] if index + 1 < len(urls) else None),
            })
        with app.app_context():
            counts = {
                "calls": db.session.scalar(sa.select(sa.func.count()).select_from(CallRow).where(CallRow.call_sid == call.call_sid)),
                "call_events": db.session.scalar(sa.select(sa.func.count()).select_from(CallEvent).where(CallEvent.call_sid == call.call_sid)),
                "recordings": db.session.scalar(sa.select(sa.func.count()).select_from(Recording).where(Recording.call_sid == call.call_sid)),
            }
            request = db.session.scalar(sa.select(CallbackRequest).where(CallbackRequest.call_sid == call.call_sid))
            outcome = db.session.scalar(sa.select(CallRow.outcome).where(CallRow.call_sid == call.call_sid))
            # Each scenario call must leave exactly one request; clear it so the next can too.
            db.session.execute(sa.delete(CallRow))
            db.session.execute(sa.delete(CallbackRequest))
            db.session.commit()
        if request is None:
            raise RuntimeError(f"{spec.name}: the recorded call left no callback request")
        scenarios.append({
            "name": spec.name, "weight": spec.weight, "description": spec.description, "steps": steps,
            "expect": {**counts, "reason": request.reason, "has_recording": request.recording_sid is not None,
                       "language": request.language, "outcome": outcome, "missed": request.missed},
        })
    with app.app_context():
        db.engine.dispose()
    return {"token": token, "prompts_version": app.extensions["voiceline.flow"].prompts_version,
            "scenarios": scenarios}


def _label(path: str) -> str:
    """A short name for a step, for the per-step latency table."""
    parts = urlsplit(path)
    name = parts.path.removeprefix("/voice/")
    query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
    if "phase" in query:
        name += f"[{query['phase']}]"
    return name


def _marker(document, following) -> str:
    """What a replayed response must contain: the URL the call went on to, else the first
    action it offered, else its hang-up; an empty <Response /> for the status callbacks."""
    if document is None or len(document) == 0:
        return "<Response />"
    targets = [el.get("action") for el in document.iter() if el.get("action")]
    targets += [el.text for el in document.iter("Redirect") if el.text]
    paths = []
    for url in targets:
        parts = urlsplit(url)
        paths.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    if following is not None:
        wanted = following.path + (f"?{following.query}" if following.query else "")
        if wanted in paths:
            return html.escape(wanted, quote=True)
    if document.find("Hangup") is not None:
        return "<Hangup />"
    if paths:
        return html.escape(paths[0], quote=True)
    return "<Response>"
