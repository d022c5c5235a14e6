"""`voiceline callbacks list` and `voiceline simulate`: interfaces operators and scripts use."""

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import PRODUCTION_SETTINGS
from tests.phone import Phone
from voiceline import audit
from voiceline.commands import pretend_hours
from voiceline.extensions import db
from voiceline.models import AuditEntry, Call, CallbackRequest, CallEvent, now_utc

CANDIDACY_CALL = "\n".join([
    "1",  # English
    "1",  # new patient: am I a candidate?
    "1", "1", "2", "1", "2",  # five prescreen answers
    "1",  # call me at this number
    "2",  # afternoon
    "2",  # no clinic name on voicemail
    "1",  # leave a message
    "I would like to ask about infusions",
]) + "\n"


def listed(runner, *args):
    result = runner.invoke(args=["callbacks", "list", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_list_is_an_empty_json_array_at_first(runner):
    assert listed(runner) == []


@pytest.mark.parametrize("lang_flag,lang", [([], "en"), (["--lang", "es"], "es")])
def test_simulated_candidacy_call_ends_as_a_stored_callback(app, runner, lang_flag, lang):
    script = CANDIDACY_CALL if lang == "en" else CANDIDACY_CALL.split("\n", 1)[1]  # --lang answers the greeting
    result = runner.invoke(args=["simulate", "--closed", *lang_flag], input=script)
    assert result.exit_code == 0, result.output
    assert "Call ended" in result.output
    [row] = listed(runner)
    for key in ("id", "phone", "status", "language", "reason", "call_sid", "created_at", "preferred_window",
                "answers", "recording_url"):
        assert key in row
    assert (row["phone"], row["status"], row["language"], row["reason"]) == ("+16175550123", "open", lang, "candidacy")
    assert row["preferred_window"] == "afternoon" and row["voicemail_ok"] is False
    assert row["answers"] == {"age_18_or_older": "yes", "mood_disorder_diagnosis": "yes",
                              "tried_two_antidepressants": "no", "under_care_now": "yes",
                              "psychosis_blood_pressure_or_pregnancy": "no"}
    assert row["recording_url"].startswith("https://api.twilio.com/2010-04-01/Accounts/")
    assert row["call_sid"].startswith("CA") and row["created_at"].endswith("+00:00")


def test_simulated_transfer_accepted_by_a_coordinator(runner):
    result = runner.invoke(args=["simulate", "--open"], input="1\n5\na\n")
    assert result.exit_code == 0, result.output
    assert "[coordinator hears] Call from the patient line about a general question" in result.output
    assert "Thank you for calling" in result.output
    assert listed(runner) == []


def test_simulate_with_a_withheld_number_asks_for_one(runner):
    result = runner.invoke(args=["simulate", "--closed", "--from", "anonymous"],
                           input="1\n5\n2125550147\n1\n4\n2\n2\n")
    assert result.exit_code == 0, result.output
    assert "You entered 2 1 2, 5 5 5, 0 1 4 7." in result.output
    assert listed(runner)[0]["phone"] == "+12125550147"


def test_list_filters_by_status_and_masks_numbers_in_the_table(runner):
    runner.invoke(args=["simulate", "--closed"], input=CANDIDACY_CALL)
    assert len(listed(runner, "--status", "open")) == 1
    assert listed(runner, "--status", "closed") == []
    table = runner.invoke(args=["callbacks", "list"]).output
    assert "0123" in table and "6175550123" not in table


@pytest.mark.parametrize(
    "real_now",
    [
        dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC),  # Wednesday 10:00 in New York: open
        dt.datetime(2026, 11, 28, 15, 0, tzinfo=dt.UTC),  # Saturday: closed
    ],
    ids=["while-open", "while-closed"],
)
def test_pretend_hours_finds_closed_then_open_moments_whatever_the_real_time(make_app, monkeypatch, real_now):
    monkeypatch.setattr("voiceline.commands.now_utc", lambda: real_now)
    app = make_app(BUSINESS_HOURS="Mon-Fri 08:00-18:00")
    pretend_hours(app, want_open=False)
    assert not app.config["BUSINESS_HOURS"].is_open(app.extensions["voiceline.clock"]())
    pretend_hours(app, want_open=True)
    assert app.config["BUSINESS_HOURS"].is_open(app.extensions["voiceline.clock"]())
    always = make_app(BUSINESS_HOURS="24/7")
    pretend_hours(always, want_open=False)
    assert always.config["BUSINESS_HOURS"].mode == "closed"


def test_static_fallback_twiml_needs_nothing_from_this_app(runner):
    result = runner.invoke(args=["twiml", "fallback"])
    assert result.exit_code == 0, result.output
    root = ET.fromstring(result.output)
    assert [verb.tag for verb in root] == ["Say", "Say", "Dial", "Say", "Say", "Hangup"]
    assert root.find("Dial/Number").text == "+18885668774"
    assert "http" not in result.output  # no URL back into an app that may be down
    assert {say.get("language") for say in root.iter("Say")} == {"en-US", "es-US"}
    # Said after the dial whatever happened, so also to a caller the coordinator just said goodbye to.
    after = [say.text for say in root.findall("Say")[2:]]
    assert after[0].startswith("If you could not speak with patient services, please call us again later.")
    assert after[1].startswith("Si no pudo hablar con atención al paciente")
    assert "couldn't reach" not in result.output


def test_calls_list_shows_calls_that_left_no_callback(app, runner):
    phone = Phone(app)
    phone.call()
    phone.press_through("1", "3")
    phone.hang_up()
    crisis = Phone(app, from_number="anonymous")
    crisis.call()
    crisis.press("9")
    crisis.hang_up()
    result = runner.invoke(args=["calls", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["call_sid"]: row for row in json.loads(result.output)}
    assert rows[phone.call_sid]["path"] == ["welcome", "main_menu", "what_to_expect_menu"]
    assert rows[phone.call_sid]["outcome"] == "missed"
    assert rows[crisis.call_sid]["outcome"] == "crisis_line" and rows[crisis.call_sid]["caller"] is None
    only_crisis = json.loads(runner.invoke(args=["calls", "list", "--json", "--outcome", "crisis_line"]).output)
    assert [r["call_sid"] for r in only_crisis] == [crisis.call_sid]
    table = runner.invoke(args=["calls", "list"]).output
    assert "welcome > main_menu > what_to_expect_menu" in table and "6175550123" not in table
    with app.app_context():  # each listing (full numbers in its JSON) is in the audit log
        listed_calls = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "list_calls")).all()
    assert [(e.actor, e.detail["count"]) for e in listed_calls] == [("cli", 2), ("cli", 1), ("cli", 2)]
    with app.app_context():  # which calls each listing showed, and who ran it
        ids = dict(db.session.execute(sa.select(Call.call_sid, Call.id)).all())
    assert sorted(listed_calls[1].detail["call_ids"]) == [ids[crisis.call_sid]]
    assert sorted(listed_calls[0].detail["call_ids"]) == sorted(ids.values())
    assert listed_calls[0].detail["system_user"] == audit.system_user()
    unknown = runner.invoke(args=["calls", "list", "--outcome", "bogus"])
    assert unknown.exit_code == 2 and "'bogus' is not one of" in unknown.output and "crisis_line" in unknown.output


def test_calls_whose_status_callback_never_came_are_closed_by_finish_stale(app, runner):
    """Status callbacks lost in an outage: the sweep closes the call as the callback would have
    (a missed call queued), leaves calls younger than the cut-off alone, and is idempotent."""
    lost, live, greeting_only = Phone(app), Phone(app, from_number="+16175550124"), Phone(app, from_number="+16175550125")
    for phone in (lost, live, greeting_only):
        phone.call()
    lost.press_through("1", "1", "1")  # English, candidacy, one answer; then no status callback
    live.press_through("1", "3")
    with app.app_context():
        for call in db.session.scalars(sa.select(Call).where(Call.call_sid.in_([lost.call_sid, greeting_only.call_sid]))):
            call.started_at -= dt.timedelta(hours=5)
        for event in db.session.scalars(sa.select(CallEvent).where(CallEvent.call_sid == lost.call_sid)):
            event.at -= dt.timedelta(hours=5)
        db.session.commit()

    result = runner.invoke(args=["calls", "finish-stale"])
    assert result.exit_code == 0, result.output
    assert "2 call(s) closed" in result.output and "1 of them queued as missed" in result.output
    with app.app_context():
        calls = {c.call_sid: c for c in db.session.scalars(sa.select(Call))}
        assert calls[lost.call_sid].twilio_status == "no-status-callback"
        assert calls[lost.call_sid].outcome == "missed" and calls[lost.call_sid].ended_at is not None
        assert calls[greeting_only.call_sid].outcome is None  # never reached the menu: nothing to queue
        assert calls[greeting_only.call_sid].ended_at is not None
        assert calls[live.call_sid].ended_at is None  # younger than 4 hours: may still be on the line
        [request] = db.session.scalars(sa.select(CallbackRequest)).all()
        assert (request.phone, request.reason, request.call_sid) == ("+16175550123", "missed_call", lost.call_sid)
        assert request.answers == {"age_18_or_older": "yes"}
        # Its age in the queue counts from the call, not from the sweep.
        assert request.created_at == calls[lost.call_sid].ended_at < now_utc() - dt.timedelta(hours=4)
        [entry] = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "finish_stale_calls")).all()
        assert entry.detail == {"calls": 2, "missed": 1}

    again = runner.invoke(args=["calls", "finish-stale"])
    assert again.exit_code == 0 and "0 call(s) closed" in again.output
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CallbackRequest)) == 1


def test_finish_stale_refuses_a_cut_off_under_twilios_call_limit(runner):
    result = runner.invoke(args=["calls", "finish-stale", "--hours", "1"])
    assert result.exit_code != 0 and "--hours" in result.output


def test_finish_stale_queues_a_spanish_missed_call_in_spanish(app, runner):
    phone = Phone(app)
    phone.call()
    phone.press_through("2", "1", "1")  # Spanish, candidacy, one answer; then the status callback is lost
    with app.app_context():
        call = db.session.scalar(sa.select(Call).where(Call.call_sid == phone.call_sid))
        call.started_at -= dt.timedelta(hours=5)
        for event in db.session.scalars(sa.select(CallEvent).where(CallEvent.call_sid == phone.call_sid)):
            event.at -= dt.timedelta(hours=5)
        db.session.commit()
        last_step = db.session.scalar(sa.select(sa.func.max(CallEvent.at)).where(CallEvent.call_sid == phone.call_sid))
    assert runner.invoke(args=["calls", "finish-stale"]).exit_code == 0
    with app.app_context():
        call = db.session.scalar(sa.select(Call).where(Call.call_sid == phone.call_sid))
        [request] = db.session.scalars(sa.select(CallbackRequest)).all()
        assert (call.language, call.outcome, call.ended_at) == ("es", "missed", last_step)
        assert (request.language, request.reason, request.answers) == ("es", "missed_call", {"age_18_or_older": "yes"})


def test_a_sqlite_file_in_a_missing_folder_is_named(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from voiceline.cli import cli

    monkeypatch.chdir(tmp_path)  # no .env here
    path = tmp_path / "no-such-folder" / "voiceline.db"
    env = {**PRODUCTION_SETTINGS, "DATABASE_URL": f"sqlite:///{path}"}
    result = CliRunner().invoke(cli, ["db", "upgrade"], env=env)
    assert result.exit_code == 1
    assert result.output.strip() == f"voiceline: database error: unable to open database file (file: {path})"


def test_a_database_that_does_not_answer_is_one_line_not_a_traceback(tmp_path, monkeypatch):
    """The release step (`voiceline db upgrade`) on a database it cannot reach."""
    from click.testing import CliRunner

    from voiceline.cli import cli

    monkeypatch.chdir(tmp_path)  # no .env here
    (tmp_path / "voiceline.db").mkdir()  # a folder where the file should be: SQLite cannot open it
    env = {**PRODUCTION_SETTINGS, "DATABASE_URL": f"sqlite:///{tmp_path / 'voiceline.db'}"}
    result = CliRunner().invoke(cli, ["db", "upgrade"], env=env)
    assert result.exit_code == 1
    file = tmp_path / "voiceline.db"
    assert result.output.strip() == f"voiceline: database error: unable to open database file (file: {file})"


@pytest.mark.parametrize("command", [["staff", "list"], ["callbacks", "list"], ["calls", "list"]])
def test_a_database_never_migrated_is_one_line_saying_what_to_run(database_url, tmp_path, monkeypatch, command):
    from click.testing import CliRunner
    from flask.cli import ScriptInfo

    from voiceline import cli as voiceline_cli
    from voiceline.cli import cli

    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    admin = None
    if database_url.startswith("postgresql"):  # an empty database beside the test database
        admin = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
        name = f"never_migrated_{uuid.uuid4().hex[:10]}"
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = admin.url.set(database=name).render_as_string(hide_password=False)
    env = {**PRODUCTION_SETTINGS, "DATABASE_URL": url}
    info = ScriptInfo(create_app=voiceline_cli._create_app)  # to close the command's connections after
    try:
        result = CliRunner().invoke(cli, command, env=env, obj=info)
    finally:
        with info.load_app().app_context():
            db.engine.dispose()
        if admin is not None:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith("voiceline: database not set up or behind this code (")
    assert line.endswith("): run voiceline db upgrade")


def test_help_lists_the_commands_on_a_machine_with_no_settings(tmp_path):
    """An operator's first `voiceline --help` comes before any .env or secret exists."""
    voiceline = str(Path(sys.executable).with_name("voiceline"))
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    for args in (["--help"], ["staff", "--help"]):
        shown = subprocess.run([voiceline, *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                               timeout=60)
        assert shown.returncode == 0, shown.stderr
        assert shown.stderr.strip() == ("voiceline: help only; the commands need their settings: "
                                        "SECRET_KEY is not set (required outside development)")
        assert ("callbacks" in shown.stdout and "staff" in shown.stdout) if args == ["--help"] else \
            "reset-password" in shown.stdout
    refusal = "voiceline: cannot start: SECRET_KEY is not set (required outside development)"
    refused = subprocess.run([voiceline, "staff", "list"], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=60)
    assert (refused.returncode, refused.stderr.strip()) == (1, refusal)
    # "--help" as an option's value is not a request for help: nothing runs on the help-only app.
    for args in (["db", "upgrade", "--tag", "--help"], ["staff", "add", "x@clinic.example", "--name", "--help"]):
        ran = subprocess.run([voiceline, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert ran.returncode == 1, (args, ran.stdout, ran.stderr)
        assert ran.stderr.strip().splitlines()[-1] == refusal


def test_version_names_voiceline_itself():
    """Which release is installed (Flask's own --version names only Python, Flask, Werkzeug)."""
    import importlib.metadata

    from click.testing import CliRunner

    from voiceline.cli import cli

    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"voiceline {importlib.metadata.version('voiceline')}\n"
