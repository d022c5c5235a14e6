"""`voiceline retention purge`: erasing health information RETENTION_DAYS after it is needed."""

import datetime as dt
import functools
import logging
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from twilio.http import HttpClient
from twilio.http.response import Response

from tests.phone import Phone
from tests.staff import (
    add_request,
    add_staff,
    ago,
    audit_rows,
    candidacy_call,
    closed_hours_app,
    html,
)
from voiceline import retention, twilio_api
from voiceline.config import ConfigError, load_settings
from voiceline.extensions import db
from voiceline.models import (
    Call,
    CallbackAttempt,
    CallbackNote,
    CallbackRequest,
    CallEvent,
    Recording,
    SafetyEvent,
    StaffUser,
    now_utc,
)
from voiceline.queue import work

ACCOUNT = "AC" + "1" * 32


class FakeTwilioDeletes(HttpClient):
    """Twilio's API for deleting recordings, installed in `app`: answers `status` (204: deleted)
    to a DELETE of one of the account's recordings, or raises `error` as the network would.
    `meanwhile(sid)`, if given, runs before each answer: what staff or callers do meanwhile."""

    def __init__(self, app, status: int = 204, error: Exception | None = None, meanwhile=None, refuse=()):
        super().__init__(logging.getLogger("fake-twilio"), False)
        self.app, self.status, self.error, self.deleted, self.meanwhile = app, status, error, [], meanwhile
        self.refuse = set(refuse)  # these recordings get a 500
        app.extensions["voiceline.twilio_http"] = self

    def request(self, method, url, params=None, data=None, headers=None, auth=None, timeout=None,
                allow_redirects=False):
        assert method == "DELETE", f"recordings are deleted with DELETE, not {method}"
        assert auth == (ACCOUNT, self.app.config["TWILIO_AUTH_TOKEN"]), "not the account's SID and auth token"
        prefix = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/"
        assert url.startswith(prefix) and url.endswith(".json"), url
        if self.meanwhile is not None:
            self.meanwhile(url[len(prefix):-len(".json")])
        if self.error is not None:
            raise self.error
        sid = url[len(prefix):-len(".json")]
        self.deleted.append(sid)
        status = 500 if sid in self.refuse else self.status
        body = "" if status == 204 else '{"code": 20404, "message": "not found", "status": %d}' % status
        return Response(status, body, {})


@pytest.fixture
def app(make_app):
    app = closed_hours_app(make_app)
    app.config["RETENTION_DAYS"] = 30
    return app


@pytest.fixture
def twilio(app):
    return FakeTwilioDeletes(app)


def purge(app, *args):
    return app.test_cli_runner().invoke(args=["retention", "purge", *args])


def backdate_call(app, call_sid: str, days: int) -> None:
    with app.app_context():
        db.session.execute(sa.update(Call).where(Call.call_sid == call_sid)
                           .values(started_at=ago(days=days, minutes=5), ended_at=ago(days=days)))
        db.session.commit()


def old_crisis_call(app, from_number: str, days_ago: int = 60) -> Phone:
    """A call that pressed the crisis key (English) and left no request, ended `days_ago`."""
    crisis = Phone(app, from_number=from_number)
    crisis.call()
    crisis.press("1")
    crisis.press("9")
    crisis.hang_up()
    backdate_call(app, crisis.call_sid, days_ago)
    return crisis


def crisis_press_on(app, call_sid: str, caller: str) -> None:
    """A crisis-line press 40 days ago on that call (after the request was stored: at the
    offer that follows a message-less recording)."""
    with app.app_context():
        db.session.add(SafetyEvent(call_sid=call_sid, step=99, at=ago(days=40), node="callback",
                                   language="en", caller=caller, dialed="988", dial_status="completed"))
        db.session.commit()


def close(app, callback_id: int, days_ago: int) -> None:
    """Closed `days_ago` by a coordinator who wrote a note and logged an attempt with a note."""
    staff = add_staff(app, f"closer-{uuid.uuid4().hex[:8]}@clinic.example", "Closer")
    with app.app_context():
        db.session.execute(sa.update(CallbackRequest).where(CallbackRequest.id == callback_id).values(
            status="closed", outcome="not_interested", closed_at=ago(days=days_ago), attempts=1))
        db.session.add(CallbackNote(callback_id=callback_id, staff_id=staff, text="Prefers Spanish; mother answers"))
        db.session.add(CallbackAttempt(callback_id=callback_id, staff_id=staff, outcome="not_interested",
                                       note="Said they found a clinic nearer home"))
        db.session.commit()


def request_with_message(app, days_ago: int, from_number: str = "+16175550123"):
    """A real call that left a voice message and a request, closed and ended `days_ago`."""
    phone = candidacy_call(app, from_number=from_number, message=True)
    with app.app_context():
        callback_id = db.session.scalar(sa.select(CallbackRequest.id).where(CallbackRequest.call_sid == phone.call_sid))
    backdate_call(app, phone.call_sid, days_ago)
    close(app, callback_id, days_ago)
    return phone, callback_id


def rows(app, model, **where):
    with app.app_context():
        stmt = sa.select(model).filter_by(**where)
        found = db.session.scalars(stmt).all()
        db.session.expunge_all()
        return found


def test_a_request_closed_longer_ago_than_retention_loses_its_health_information(app, twilio):
    phone, callback_id = request_with_message(app, days_ago=40)
    assert rows(app, CallEvent, call_sid=phone.call_sid) and rows(app, Recording, call_sid=phone.call_sid)

    result = purge(app)

    assert result.exit_code == 0, result.output
    assert "1 request(s), 1 call(s) and 1 voice message(s) erased." in result.output
    assert twilio.deleted == [phone.recording_sid]  # at Twilio first
    [item] = rows(app, CallbackRequest, id=callback_id)
    assert (item.phone, item.answers, item.voicemail_ok, item.recording_sid) == ("", {}, None, None)
    assert item.erased_at is not None
    # What the counts and the audit log need stays.
    assert (item.status, item.outcome, item.reason, item.language, item.attempts) == (
        "closed", "not_interested", "candidacy", "en", 1)
    assert rows(app, CallbackNote, callback_id=callback_id) == []
    [attempt] = rows(app, CallbackAttempt, callback_id=callback_id)
    assert (attempt.outcome, attempt.note) == ("not_interested", None)
    [call] = rows(app, Call, call_sid=phone.call_sid)
    assert (call.caller, call.callback_id, call.outcome) == (None, callback_id, "callback_requested")
    assert call.erased_at is not None
    assert rows(app, CallEvent, call_sid=phone.call_sid) == []
    assert rows(app, Recording, call_sid=phone.call_sid) == []
    [entry] = audit_rows(app, "retention_purge")
    assert (entry.actor, entry.detail) == ("cli", {"days": 30, "requests": 1, "calls": 1, "recordings": 1, "kept": 0})


def test_open_and_recently_closed_requests_are_kept_whole(app, twilio):
    old_open = candidacy_call(app, from_number="+16175550101")
    backdate_call(app, old_open.call_sid, 400)  # open for a year: still someone to call back
    recent, recent_id = request_with_message(app, days_ago=29, from_number="+16175550102")
    before = {sid: (rows(app, Call, call_sid=sid), len(rows(app, CallEvent, call_sid=sid)))
              for sid in (old_open.call_sid, recent.call_sid)}

    result = purge(app)

    assert result.exit_code == 0, result.output
    assert "0 request(s), 0 call(s) and 0 voice message(s) erased." in result.output
    assert twilio.deleted == []
    assert {r.phone for r in rows(app, CallbackRequest)} == {"+16175550101", "+16175550102"}
    for sid, (calls, events) in before.items():
        [call] = rows(app, Call, call_sid=sid)
        assert call.caller == calls[0].caller and call.erased_at is None
        assert len(rows(app, CallEvent, call_sid=sid)) == events > 0
    assert len(rows(app, CallbackNote, callback_id=recent_id)) == 1


def test_a_call_that_left_no_request_is_erased_after_it_ended_but_its_crisis_event_stays(app, twilio):
    old, new = Phone(app, from_number="+16175550111"), Phone(app, from_number="+16175550112")
    for phone in (old, new):
        phone.call()
        phone.press("1")
        phone.press("9")  # the crisis line: a safety event, never a request
        phone.dial_result("completed")
        phone.hang_up()
    backdate_call(app, old.call_sid, 31)

    result = purge(app)

    assert result.exit_code == 0, result.output
    assert "0 request(s), 1 call(s) and 0 voice message(s) erased." in result.output
    [call] = rows(app, Call, call_sid=old.call_sid)
    assert (call.caller, call.outcome) == (None, "crisis_line") and call.erased_at is not None
    assert rows(app, CallEvent, call_sid=old.call_sid) == []
    [event] = rows(app, SafetyEvent, call_sid=old.call_sid)
    assert (event.caller, event.dialed, event.dial_status) == (None, "988", "completed")
    # The newer call keeps everything.
    assert rows(app, Call, call_sid=new.call_sid)[0].caller == "+16175550112"
    assert rows(app, SafetyEvent, call_sid=new.call_sid)[0].caller == "+16175550112"
    assert rows(app, CallEvent, call_sid=new.call_sid)


def test_steps_whose_call_row_was_never_written_go_by_their_own_time(app, twilio):
    with app.app_context():
        for sid, days in (("CA" + "a" * 32, 45), ("CA" + "b" * 32, 2)):
            db.session.add(CallEvent(call_sid=sid, step=1, at=ago(days=days), node="prescreen_age", choice="1",
                                     field="age_18_or_older", value="yes"))
        db.session.commit()
    assert purge(app).exit_code == 0
    assert [e.call_sid for e in rows(app, CallEvent)] == ["CA" + "b" * 32]


def test_when_twilio_cannot_delete_the_message_the_request_keeps_everything_until_next_run(app):
    phone, callback_id = request_with_message(app, days_ago=40)
    failing = FakeTwilioDeletes(app, status=500)

    result = purge(app)

    assert result.exit_code == 1
    assert f"kept for the next run: request #{callback_id}: Twilio answered 500" in result.output
    [item] = rows(app, CallbackRequest, id=callback_id)
    assert (item.phone, item.recording_sid, item.erased_at) == ("+16175550123", phone.recording_sid, None)
    assert rows(app, CallEvent, call_sid=phone.call_sid) and rows(app, CallbackNote, callback_id=callback_id)
    assert rows(app, Recording, call_sid=phone.call_sid)
    assert failing.deleted == [phone.recording_sid]  # asked, refused
    [entry] = audit_rows(app, "retention_purge")
    assert entry.detail["kept"] == 1 and entry.detail["requests"] == 0

    gone = FakeTwilioDeletes(app, status=404)  # deleted at Twilio meanwhile (by hand): nothing left to delete
    result = purge(app)
    assert result.exit_code == 0, result.output
    assert rows(app, CallbackRequest, id=callback_id)[0].erased_at is not None
    assert gone.deleted == [phone.recording_sid]


def test_twilio_out_of_reach_keeps_the_request(app):
    _, callback_id = request_with_message(app, days_ago=40)
    FakeTwilioDeletes(app, error=ConnectionError("connection refused"))
    result = purge(app)
    assert result.exit_code == 1
    assert f"request #{callback_id}: Twilio could not be reached (ConnectionError)" in result.output
    assert rows(app, CallbackRequest, id=callback_id)[0].erased_at is None


def test_a_dry_run_counts_and_changes_nothing(app, twilio):
    phone, callback_id = request_with_message(app, days_ago=40)
    result = purge(app, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "1 request(s), 1 call(s) and 1 voice message(s) would be erased (dry run)." in result.output
    assert twilio.deleted == [] and audit_rows(app, "retention_purge") == []
    assert rows(app, CallbackRequest, id=callback_id)[0].phone == "+16175550123"
    assert rows(app, CallEvent, call_sid=phone.call_sid)


def test_a_second_run_finds_nothing_more(app, twilio):
    request_with_message(app, days_ago=40)
    assert purge(app).exit_code == 0
    result = purge(app)
    assert result.exit_code == 0 and "0 request(s), 0 call(s) and 0 voice message(s) erased." in result.output
    assert len(twilio.deleted) == 1


def test_without_retention_days_nothing_is_erased(app, twilio):
    app.config["RETENTION_DAYS"] = None
    _, callback_id = request_with_message(app, days_ago=4000)
    result = purge(app)
    assert result.exit_code == 1
    assert "RETENTION_DAYS is not set, so nothing is erased" in result.output
    assert rows(app, CallbackRequest, id=callback_id)[0].erased_at is None and twilio.deleted == []


@pytest.mark.parametrize(("raw", "days"), [(None, None), ("", None), ("off", None), ("30", 30), (" 365 ", 365),
                                           ("3650", 3650)])
def test_retention_days_setting(tmp_path, raw, days):
    settings = {"VOICELINE_ENV": "development", "RETENTION_DAYS": raw, "TWILIO_ACCOUNT_SID": ACCOUNT}
    assert load_settings(settings, tmp_path)["RETENTION_DAYS"] == days


@pytest.mark.parametrize(("raw", "says"), [
    ("7", "RETENTION_DAYS: must be between 30 and 3650, got 7"),
    ("0", "RETENTION_DAYS: must be between 30 and 3650, got 0"),
    ("a year", "RETENTION_DAYS: expected a whole number, got 'a year'"),
])
def test_a_retention_period_too_short_or_not_a_number_stops_start_up(tmp_path, raw, says):
    with pytest.raises(ConfigError, match=says):
        load_settings({"VOICELINE_ENV": "development", "RETENTION_DAYS": raw}, tmp_path)


# ---- what staff see of an erased request ------------------------------------------------------
def erased_request(app) -> int:
    callback_id = add_request(app, phone="+16175550155", recording_sid=None)
    close(app, callback_id, 40)
    assert purge(app).exit_code == 0
    return callback_id


@pytest.fixture
def erased(app, twilio):
    return erased_request(app)


def test_the_page_of_an_erased_request_says_so_and_takes_nothing_new(app, admin, erased):
    doc = admin.page(f"/staff/callbacks/{erased}")
    assert doc.one("p", id="erased").text.startswith("Erased")
    assert doc.find("p", class_="phone-big") is None and "555-0155" not in doc.text
    assert doc.find("form", action=f"/staff/callbacks/{erased}/notes") is None
    assert doc.find("form", action=f"/staff/callbacks/{erased}/reopen") is None
    # Posted anyway (an old tab): refused, nothing stored.
    for path, data in ((f"/staff/callbacks/{erased}/notes", {"text": "Called back from 617 555 0155"}),
                       (f"/staff/callbacks/{erased}/reopen", {})):
        doc = html(admin.post(path, data=data, follow_redirects=True))
        assert "erased under the retention schedule" in doc.text
    [item] = rows(app, CallbackRequest, id=erased)
    assert (item.status, item.phone) == ("closed", "")
    assert rows(app, CallbackNote, callback_id=erased) == []


def test_the_queue_lists_an_erased_request_as_erased(app, coordinator, erased):
    doc = coordinator.page("/staff/?status=closed")
    link = doc.one("a", href=f"/staff/callbacks/{erased}")
    assert link.text.split() == [f"#{erased}", "Erased"]


def test_another_request_does_not_list_an_erased_one_as_the_same_caller(app, coordinator, erased):
    other = add_request(app, phone="+16175550155")  # the same person calls again, a year later
    doc = coordinator.page(f"/staff/callbacks/{other}")
    assert doc.find("section", **{"aria-labelledby": "others-h"}) is None
    doc = coordinator.page(f"/staff/callbacks/{erased}")  # and the erased one lists nothing of theirs
    assert doc.find("section", **{"aria-labelledby": "others-h"}) is None


def test_the_json_listing_says_when_a_request_was_erased(app, erased):
    import json

    result = app.test_cli_runner().invoke(args=["callbacks", "list", "--json", "--status", "closed"])
    [item] = [r for r in json.loads(result.output) if r["id"] == erased]
    assert (item["phone"], item["answers"]) == ("", {}) and item["erased_at"]


def test_random_sids_are_not_sent_to_twilio(app, twilio):
    """A SID no Twilio recording can have (a hand-made row) has nothing to delete there."""
    callback_id = add_request(app, recording_sid="not-a-sid-" + uuid.uuid4().hex[:8])
    close(app, callback_id, 40)
    assert purge(app).exit_code == 0
    assert twilio.deleted == [] and rows(app, CallbackRequest, id=callback_id)[0].erased_at is not None


# ---- while the purge runs: staff and callers go on working --------------------------------------
def elsewhere(app, work):
    """`work(session)` on a connection of its own, committed: another worker, meanwhile."""
    with app.app_context(), Session(db.engine) as session:
        work(session)
        session.commit()


def test_a_request_reopened_while_the_purge_runs_keeps_its_message(app):
    first, first_id = request_with_message(app, days_ago=40, from_number="+16175550201")
    second, second_id = request_with_message(app, days_ago=40, from_number="+16175550202")
    admin_id = add_staff(app, "admin@clinic.example", "Admin", role="admin")

    def reopen_second(sid):
        if sid == first.recording_sid:
            elsewhere(app, lambda session: work.reopen(session, second_id, session.get(StaffUser, admin_id), now_utc()))

    twilio = FakeTwilioDeletes(app, meanwhile=reopen_second)
    assert purge(app).exit_code == 0
    assert twilio.deleted == [first.recording_sid]  # not the second request's message
    [item] = rows(app, CallbackRequest, id=second_id)
    assert (item.status, item.phone, item.recording_sid, item.erased_at) == (
        "open", "+16175550202", second.recording_sid, None)
    assert rows(app, CallEvent, call_sid=second.call_sid) and rows(app, Recording, call_sid=second.call_sid)
    assert rows(app, CallbackRequest, id=first_id)[0].erased_at is not None


def test_a_request_closed_again_today_while_the_purge_runs_is_kept(app):
    first, _ = request_with_message(app, days_ago=40, from_number="+16175550211")
    second, second_id = request_with_message(app, days_ago=40, from_number="+16175550212")

    def reopened_and_closed_today(sid):
        if sid == first.recording_sid:
            elsewhere(app, lambda session: session.execute(
                sa.update(CallbackRequest).where(CallbackRequest.id == second_id).values(closed_at=now_utc())))

    twilio = FakeTwilioDeletes(app, meanwhile=reopened_and_closed_today)
    assert purge(app).exit_code == 0
    assert twilio.deleted == [first.recording_sid]
    [item] = rows(app, CallbackRequest, id=second_id)
    assert (item.phone, item.erased_at) == ("+16175550212", None)


def test_a_frozen_request_takes_no_note_and_cannot_be_reopened(app):
    """While its messages are deleted at Twilio, the request is frozen (erased_at set first)."""
    phone, callback_id = request_with_message(app, days_ago=40)
    admin_id = add_staff(app, "admin@clinic.example", "Admin", role="admin")
    refused = []

    def try_to_change(sid):
        for change in (lambda s: work.reopen(s, callback_id, s.get(StaffUser, admin_id), now_utc()),
                       lambda s: work.add_note(s, callback_id, s.get(StaffUser, admin_id), "call back", now_utc())):
            try:
                elsewhere(app, change)
            except work.QueueError as exc:
                refused.append(str(exc))

    FakeTwilioDeletes(app, meanwhile=try_to_change)
    assert purge(app).exit_code == 0
    assert refused == ["This request is being erased under the retention schedule: it cannot be changed."] * 2
    [item] = rows(app, CallbackRequest, id=callback_id)
    assert (item.status, item.phone) == ("closed", "")
    assert rows(app, CallbackNote, callback_id=callback_id) == []


def test_a_run_stopped_after_the_freeze_is_finished_by_the_next(app, twilio):
    phone, callback_id = request_with_message(app, days_ago=40)
    with app.app_context():  # frozen by a run that stopped before erasing
        db.session.execute(sa.update(CallbackRequest).where(CallbackRequest.id == callback_id)
                           .values(erased_at=ago(hours=1)))
        db.session.commit()
    result = purge(app)
    assert "1 request(s), 1 call(s) and 1 voice message(s) erased." in result.output
    [item] = rows(app, CallbackRequest, id=callback_id)
    assert item.phone == "" and rows(app, CallEvent, call_sid=phone.call_sid) == []


def test_each_erased_request_is_in_the_audit_log(app, twilio):
    _, first_id = request_with_message(app, days_ago=40, from_number="+16175550221")
    _, second_id = request_with_message(app, days_ago=50, from_number="+16175550222")
    assert purge(app).exit_code == 0
    entries = audit_rows(app, "retention_erase")
    assert [(e.callback_id, e.actor, e.detail) for e in entries] == [
        (first_id, "cli", {"calls": 1, "recordings": 1}), (second_id, "cli", {"calls": 1, "recordings": 1})]


def test_old_calls_from_a_phone_with_an_open_request_are_kept_while_it_is_open(app, twilio):
    """Its page lists them, and a crisis-line press among them is what staff must see first."""
    crisis = old_crisis_call(app, "+16175550231")
    callback_id = add_request(app, phone="+16175550231")
    assert purge(app).exit_code == 0
    assert rows(app, SafetyEvent, call_sid=crisis.call_sid)[0].caller == "+16175550231"
    assert rows(app, Call, call_sid=crisis.call_sid)[0].erased_at is None
    close(app, callback_id, 40)
    assert purge(app).exit_code == 0  # the request closed long ago: now both go
    assert rows(app, SafetyEvent, call_sid=crisis.call_sid)[0].caller is None


def test_a_request_kept_after_some_messages_were_deleted_offers_only_the_rest(app):
    phone, callback_id = request_with_message(app, days_ago=40)
    later = "RE" + "f" * 32  # sorts after the message: Twilio refuses this one
    with app.app_context():
        db.session.add(Recording(recording_sid=later, call_sid=phone.call_sid, status="completed"))
        db.session.commit()
    twilio = FakeTwilioDeletes(app, refuse={later})
    result = purge(app)
    assert result.exit_code == 1 and f"request #{callback_id}: Twilio answered 500" in result.output
    assert twilio.deleted == sorted([phone.recording_sid, later])
    [item] = rows(app, CallbackRequest, id=callback_id)
    assert (item.phone, item.erased_at, item.recording_sid) == ("+16175550123", None, None)
    assert [r.recording_sid for r in rows(app, Recording, call_sid=phone.call_sid)] == [later]
    FakeTwilioDeletes(app)
    assert purge(app).exit_code == 0
    assert rows(app, CallbackRequest, id=callback_id)[0].phone == ""


# ---- runs that overlap, runs that stopped, and what changes while a run goes on ----------------
def test_a_second_run_meanwhile_leaves_the_first_runs_request_alone(app):
    phone, callback_id = request_with_message(app, days_ago=40)
    second = []

    def another_run(sid):  # started by an overlapping scheduler while the first deletes the message
        if not second:
            with app.app_context(), Session(db.engine) as session:
                second.append(retention.purge(session, now=now_utc(), days=30, delete_recording=refuse))

    def refuse(sid):
        raise twilio_api.RecordingUnavailable("Twilio answered 429")

    FakeTwilioDeletes(app, meanwhile=another_run)
    assert purge(app).exit_code == 0
    assert (second[0].requests, second[0].kept) == (0, [])  # frozen by the first: not listed, not lifted
    [item] = rows(app, CallbackRequest, id=callback_id)
    assert item.phone == "" and item.erased_at is not None
    assert len(audit_rows(app, "retention_erase")) == 1


def test_a_lone_call_whose_phone_asks_for_a_call_while_the_run_goes_on_is_kept(app):
    first, _ = request_with_message(app, days_ago=40, from_number="+16175550241")
    crisis = old_crisis_call(app, "+16175550242")

    def they_call_again(sid):  # while the earlier request's message is deleted
        if sid == first.recording_sid:
            add_request(app, phone="+16175550242")

    FakeTwilioDeletes(app, meanwhile=they_call_again)
    assert purge(app).exit_code == 0
    [call] = rows(app, Call, call_sid=crisis.call_sid)
    assert (call.caller, call.erased_at) == ("+16175550242", None)
    assert rows(app, SafetyEvent, call_sid=crisis.call_sid)[0].caller == "+16175550242"
    assert rows(app, CallEvent, call_sid=crisis.call_sid)


def test_a_lone_call_queued_by_finish_stale_while_the_run_goes_on_is_kept(app):
    first, _ = request_with_message(app, days_ago=40, from_number="+16175550251")
    stale = Phone(app, from_number="+16175550252")
    stale.call()
    stale.press_through("1", "3")
    backdate_call(app, stale.call_sid, 45)
    missed = add_request(app, phone="+16175550252", reason="missed_call", missed=True, requested_by_caller=False)

    def finish_stale_links_it(sid):
        if sid == first.recording_sid:
            elsewhere(app, lambda session: session.execute(
                sa.update(Call).where(Call.call_sid == stale.call_sid).values(callback_id=missed)))

    FakeTwilioDeletes(app, meanwhile=finish_stale_links_it)
    assert purge(app).exit_code == 0
    [call] = rows(app, Call, call_sid=stale.call_sid)
    assert (call.caller, call.erased_at, call.callback_id) == ("+16175550252", None, missed)
    assert rows(app, CallEvent, call_sid=stale.call_sid)


def stopped_run_froze(app, callback_id: int) -> None:
    with app.app_context():
        db.session.execute(sa.update(CallbackRequest).where(CallbackRequest.id == callback_id)
                           .values(erased_at=ago(hours=3)))
        db.session.commit()


def test_a_stopped_runs_freeze_is_finished_even_if_retention_was_raised_since(app, twilio):
    """It was due when frozen, and the stopped run may have deleted some of its messages:
    given back, it would offer messages that no longer exist."""
    phone, callback_id = request_with_message(app, days_ago=40)
    stopped_run_froze(app, callback_id)
    app.config["RETENTION_DAYS"] = 90
    dry = purge(app, "--dry-run")
    assert "1 request(s), 1 call(s) and 1 voice message(s) would be erased (dry run)." in dry.output
    assert rows(app, CallbackRequest, id=callback_id)[0].phone == "+16175550123" and twilio.deleted == []
    assert purge(app).exit_code == 0
    assert rows(app, CallbackRequest, id=callback_id)[0].phone == "" and twilio.deleted == [phone.recording_sid]


@pytest.mark.parametrize("dry_run", [False, True])
def test_with_retention_off_only_a_stopped_runs_freeze_is_finished(app, twilio, dry_run):
    phone, callback_id = request_with_message(app, days_ago=40)
    stopped_run_froze(app, callback_id)
    other, other_id = request_with_message(app, days_ago=400, from_number="+16175550299")  # due, not frozen
    app.config["RETENTION_DAYS"] = None
    result = purge(app, *(["--dry-run"] if dry_run else []))
    assert result.exit_code == 1
    assert "RETENTION_DAYS is not set, so nothing else is erased" in result.output
    assert "1 request(s), 1 call(s) and 1 voice message(s)" in result.output
    assert rows(app, CallbackRequest, id=callback_id)[0].phone == ("+16175550123" if dry_run else "")
    assert rows(app, CallbackRequest, id=other_id)[0].phone == "+16175550299"
    assert twilio.deleted == ([] if dry_run else [phone.recording_sid])


def test_a_request_being_erased_shows_its_data_as_it_is_and_takes_no_changes(app, admin):
    callback_id = add_request(app, phone="+16175550261", recording_sid=None)
    close(app, callback_id, 40)
    with app.app_context():
        db.session.execute(sa.update(CallbackRequest).where(CallbackRequest.id == callback_id)
                           .values(erased_at=now_utc()))
        db.session.commit()
    doc = admin.page(f"/staff/callbacks/{callback_id}")
    assert doc.one("p", id="erased").text.startswith("Being erased under the retention schedule")
    assert doc.one("p", class_="phone-big").text == "(617) 555-0261"  # still there: not said to be gone
    assert doc.find("form", action=f"/staff/callbacks/{callback_id}/notes") is None
    assert doc.find("form", action=f"/staff/callbacks/{callback_id}/reopen") is None
    row = admin.page("/staff/?status=closed").one("a", href=f"/staff/callbacks/{callback_id}")
    assert "Erased" not in row.text and "0261" in row.text


def test_a_crisis_press_keeps_its_number_while_that_phone_has_an_open_request(app, twilio):
    """An old request is erased, but the crisis-line press on its call still warns whoever
    calls that phone back about its newer request; when that one is done, the number goes."""
    phone, old_id = request_with_message(app, days_ago=40, from_number="+16175550271")
    crisis_press_on(app, phone.call_sid, "+16175550271")
    newer = add_request(app, phone="+16175550271")
    assert purge(app).exit_code == 0
    assert rows(app, CallbackRequest, id=old_id)[0].phone == ""
    assert rows(app, SafetyEvent, call_sid=phone.call_sid)[0].caller == "+16175550271"
    close(app, newer, 35)
    assert purge(app).exit_code == 0
    assert rows(app, SafetyEvent, call_sid=phone.call_sid)[0].caller is None


def test_a_lone_calls_message_is_kept_if_its_phone_asks_for_a_call_while_the_run_goes_on(app):
    first, _ = request_with_message(app, days_ago=40, from_number="+16175550281")
    lone_sid, lone_message = "CA" + "c" * 32, "RE" + "c" * 32  # a message the crisis key cut short
    with app.app_context():
        db.session.add(Call(call_sid=lone_sid, caller="+16175550282", caller_id_status="valid", prompts_version="t",
                            started_at=ago(days=50), ended_at=ago(days=50), outcome="crisis_line"))
        db.session.add(Recording(recording_sid=lone_message, call_sid=lone_sid, status="completed",
                                 created_at=ago(days=50)))
        db.session.commit()

    def they_call_again(sid):
        if sid == first.recording_sid:
            add_request(app, phone="+16175550282")

    twilio = FakeTwilioDeletes(app, meanwhile=they_call_again)
    assert purge(app).exit_code == 0
    assert twilio.deleted == [first.recording_sid]
    assert [r.recording_sid for r in rows(app, Recording, call_sid=lone_sid)] == [lone_message]
    assert rows(app, Call, call_sid=lone_sid)[0].caller == "+16175550282"


def test_an_open_requests_page_keeps_the_crisis_warning_from_an_erased_requests_call(app, coordinator, twilio):
    phone, _ = request_with_message(app, days_ago=40, from_number="+16175550291")
    crisis_press_on(app, phone.call_sid, "+16175550291")
    newer = add_request(app, phone="+16175550291")
    assert coordinator.page(f"/staff/callbacks/{newer}").find("section", class_="callout-safety") is not None
    assert purge(app).exit_code == 0
    assert rows(app, Call, call_sid=phone.call_sid)[0].caller is None  # the old call is erased
    warning = coordinator.page(f"/staff/callbacks/{newer}").one("section", class_="callout-safety")
    assert "This caller used the crisis line" in warning.text


def test_a_run_over_an_hour_long_keeps_its_own_freezes(app):
    """Each freeze is marked when it is made: another run never takes it for a stopped run's."""
    first, first_id = request_with_message(app, days_ago=40)
    second = []

    def another_run(sid):
        if not second:
            with app.app_context(), Session(db.engine) as session:
                second.append(retention.purge(session, now=now_utc(), days=30, delete_recording=refuse))

    def refuse(sid):
        raise twilio_api.RecordingUnavailable("Twilio answered 429")

    twilio = FakeTwilioDeletes(app, meanwhile=another_run)
    with app.app_context():  # the first run began 61 minutes ago
        first_run = retention.purge(db.session, now=now_utc() - dt.timedelta(minutes=61), days=30,
                                    delete_recording=functools.partial(twilio_api.delete_recording, app))
    assert (second[0].requests, second[0].kept) == (0, [])
    assert (first_run.requests, first_run.kept) == (1, [])
    assert twilio.deleted == [first.recording_sid]
    assert rows(app, CallbackRequest, id=first_id)[0].phone == ""


@pytest.mark.parametrize("request_made", [True, False], ids=["request", "lone"])
def test_a_very_late_status_callback_brings_nothing_back_to_an_erased_call(app, twilio, request_made):
    if request_made:
        phone, _ = request_with_message(app, days_ago=40, from_number="+16175550301")
    else:
        phone = Phone(app, from_number="+16175550301")
        phone.call()
        phone.hang_up()
        backdate_call(app, phone.call_sid, 40)
    assert purge(app).exit_code == 0
    assert rows(app, Call, call_sid=phone.call_sid)[0].caller is None
    phone.hang_up(status="completed")  # Twilio's retry of the final status, weeks late
    phone.ended = False
    phone.hang_up(status="completed")
    [call] = rows(app, Call, call_sid=phone.call_sid)
    assert call.caller is None and call.erased_at is not None
    assert len(rows(app, CallbackRequest)) == (1 if request_made else 0)


def test_the_crisis_flag_from_the_phone_a_request_was_made_from_survives_the_purge(app, coordinator, twilio):
    """Someone calls from 0311, presses 9; later calls again from 0311 and keys in 0312: that
    open request is flagged (and warns) because of 0311's press, which must keep its number."""
    crisis = old_crisis_call(app, "+16175550311")
    candidacy_call(app, from_number="+16175550311", other_number="6175550312")
    [open_id] = [r.id for r in rows(app, CallbackRequest) if r.phone == "+16175550312"]
    doc = coordinator.page(f"/staff/callbacks/{open_id}")
    assert doc.find("section", class_="callout-safety") is not None
    assert purge(app).exit_code == 0
    assert rows(app, SafetyEvent, call_sid=crisis.call_sid)[0].caller == "+16175550311"
    assert coordinator.page(f"/staff/callbacks/{open_id}").find("section", class_="callout-safety") is not None


@pytest.mark.parametrize("closed_days_ago", [2, 29])
def test_a_recently_closed_request_keeps_its_phones_crisis_warning(app, admin, twilio, closed_days_ago):
    """Closed, but not yet due (and it can be reopened, or the person call again): the page
    still warns that this phone used the crisis line, and keeps its older calls."""
    crisis = old_crisis_call(app, "+16175550321")
    callback_id = add_request(app, phone="+16175550321")
    close(app, callback_id, closed_days_ago)
    assert purge(app).exit_code == 0
    assert rows(app, SafetyEvent, call_sid=crisis.call_sid)[0].caller == "+16175550321"
    assert rows(app, Call, call_sid=crisis.call_sid)[0].erased_at is None
    admin.post(f"/staff/callbacks/{callback_id}/reopen")
    assert admin.page(f"/staff/callbacks/{callback_id}").find("section", class_="callout-safety") is not None


def test_a_press_kept_for_a_newer_request_stays_while_that_one_is_closed_but_not_due(app, twilio):
    phone, _ = request_with_message(app, days_ago=40, from_number="+16175550331")
    crisis_press_on(app, phone.call_sid, "+16175550331")
    newer = add_request(app, phone="+16175550331")
    assert purge(app).exit_code == 0
    close(app, newer, 1)  # closed yesterday: kept for another 29 days
    assert purge(app).exit_code == 0
    assert rows(app, SafetyEvent, call_sid=phone.call_sid)[0].caller == "+16175550331"


def test_a_stopped_runs_freeze_stays_frozen_when_twilio_refuses_so_the_next_run_finishes_it(app):
    phone, callback_id = request_with_message(app, days_ago=40)
    stopped_run_froze(app, callback_id)
    FakeTwilioDeletes(app, status=503)
    result = purge(app)
    assert result.exit_code == 1 and f"kept for the next run: request #{callback_id}" in result.output
    [item] = rows(app, CallbackRequest, id=callback_id)
    assert item.being_erased  # not given back: its erase has begun
    FakeTwilioDeletes(app)
    with app.app_context():  # an hour on, that freeze is taken over again
        db.session.execute(sa.update(CallbackRequest).where(CallbackRequest.id == callback_id)
                           .values(erased_at=ago(hours=2)))
        db.session.commit()
    assert purge(app).exit_code == 0
    assert rows(app, CallbackRequest, id=callback_id)[0].erased
