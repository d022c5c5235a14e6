"""`voiceline callbacks claim|next|attempt|list`: the queue from the terminal, same rules as the web."""

import json

import sqlalchemy as sa

from tests import factories
from voiceline.extensions import db
from voiceline.models import AuditEntry


def invoke(runner, *args):
    result = runner.invoke(args=list(args))
    return result.exit_code, result.output


def test_next_claim_attempt_and_list_json(app, runner):
    factories.staff(app, "ana@clinic.example", name="Ana")
    factories.staff(app, "ben@clinic.example", name="Ben")
    older = factories.callback(app, phone="+16175550101")
    factories.callback(app, phone="+16175550102", age=__import__("datetime").timedelta(minutes=5))

    code, out = invoke(runner, "callbacks", "next", "--staff", "ana@clinic.example")
    assert code == 0 and json.loads(out)["id"] == older and json.loads(out)["claimed_by"] == "ana@clinic.example"

    code, out = invoke(runner, "callbacks", "claim", str(older), "--staff", "ben@clinic.example")
    assert code != 0 and "Ana is working on this request right now." in out

    code, out = invoke(runner, "callbacks", "attempt", str(older), "--outcome", "no_answer",
                       "--staff", "ana@clinic.example", "--note", "rang 8 times")
    row = json.loads(out)
    assert code == 0 and (row["attempts"], row["status"], row["claimed_by"]) == (1, "open", None)

    code, out = invoke(runner, "callbacks", "attempt", str(older), "--outcome", "booked", "--staff", "ben@clinic.example")
    row = json.loads(out)
    assert (row["status"], row["outcome"], row["attempts"]) == ("closed", "booked", 2) and row["closed_at"]

    code, out = invoke(runner, "callbacks", "list", "--json")
    rows = {r["id"]: r for r in json.loads(out)}
    for key in ("claimed_by", "attempts", "closed_at", "outcome"):
        assert key in rows[older]
    assert rows[older]["outcome"] == "booked"
    with app.app_context():
        actors = db.session.execute(
            sa.select(AuditEntry.action, AuditEntry.actor).where(AuditEntry.callback_id == older).order_by(AuditEntry.id)
        ).all()
        listed = db.session.scalar(sa.select(sa.func.count()).where(AuditEntry.action == "list_callbacks"))
    assert actors[0] == ("claim", "cli:ana@clinic.example")
    assert ("attempt", "cli:ben@clinic.example") in actors
    assert listed == 1
    with app.app_context():
        [entry] = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "list_callbacks")).all()
    assert older in entry.detail["callback_ids"] and len(entry.detail["callback_ids"]) == len(rows)


def test_every_record_the_cli_prints_is_an_audited_look(app, runner):
    factories.staff(app, "ana@clinic.example", name="Ana")
    callback_id = factories.callback(app, phone="+16175550101")
    for _ in range(2):  # a claim, then a renewal of it: both print the whole record
        code, out = invoke(runner, "callbacks", "claim", str(callback_id), "--staff", "ana@clinic.example")
        assert code == 0 and json.loads(out)["phone"] == "+16175550101"
    with app.app_context():
        actions = db.session.execute(
            sa.select(AuditEntry.action, AuditEntry.actor).where(AuditEntry.callback_id == callback_id)
            .order_by(AuditEntry.id)).all()
    assert actions == [("claim", "cli:ana@clinic.example"), ("view_callback", "cli:ana@clinic.example"),
                       ("view_callback", "cli:ana@clinic.example")]


def test_next_on_an_empty_queue(app, runner):
    factories.staff(app, "ana@clinic.example")
    code, out = invoke(runner, "callbacks", "next", "--staff", "ana@clinic.example")
    assert code == 0 and "There is nothing waiting in the queue right now." in out


def test_next_when_everything_is_taken_says_so(app, runner):
    """Not "empty": a colleague holds the one open request."""
    factories.staff(app, "ana@clinic.example")
    factories.staff(app, "ben@clinic.example")
    factories.callback(app)
    invoke(runner, "callbacks", "next", "--staff", "ben@clinic.example")
    code, out = invoke(runner, "callbacks", "next", "--staff", "ana@clinic.example")
    assert code == 0 and "The one open request is being worked on by a colleague right now." in out


def test_unknown_staff_item_or_outcome(app, runner):
    factories.staff(app, "ana@clinic.example")
    assert "No staff account" in invoke(runner, "callbacks", "next", "--staff", "who@clinic.example")[1]
    assert "no callback request #42" in invoke(runner, "callbacks", "claim", "42", "--staff", "ana@clinic.example")[1]
    code, out = invoke(runner, "callbacks", "attempt", "1", "--outcome", "maybe", "--staff", "ana@clinic.example")
    assert code != 0 and "maybe" in out


def test_disabled_staff_cannot_work_the_queue(app, runner):
    factories.staff(app, "ana@clinic.example")
    invoke(runner, "staff", "disable", "ana@clinic.example")
    code, out = invoke(runner, "callbacks", "next", "--staff", "ana@clinic.example")
    assert code != 0 and "disabled" in out


def test_next_shows_the_request_i_am_still_working_on(app, runner):
    factories.staff(app, "ana@clinic.example")
    first = factories.callback(app, phone="+16175550101")
    factories.callback(app, phone="+16175550102", age=__import__("datetime").timedelta(minutes=5))
    invoke(runner, "callbacks", "next", "--staff", "ana@clinic.example")
    result = runner.invoke(args=["callbacks", "next", "--staff", "ana@clinic.example"])
    assert result.exit_code == 0 and json.loads(result.stdout)["id"] == first
    assert result.stderr == f"Still working on request #{first}: finish it or release it first.\n"
    with app.app_context():
        claims = db.session.scalars(sa.select(AuditEntry.callback_id).where(AuditEntry.action == "claim")).all()
    assert claims == [first]
