"""Twilio's status callback closes the call's record: settled calls with one UPDATE
(store.close_settled_call), every other call through finish_call. Both must leave the same row."""

import datetime as dt
import threading

import pytest
import sqlalchemy as sa

from tests.factories import stored_requests, wait_until_a_query_waits_for_a_lock
from tests.phone import Phone, twilio_post
from voiceline.autocommit import Autocommit
from voiceline.extensions import db
from voiceline.models import Call, CallbackRequest
from voiceline.queue import intake
from voiceline.voice import store

ENDED = dt.datetime(2026, 11, 28, 23, 5, tzinfo=dt.UTC)
CLOSED_COLUMNS = ("twilio_status", "ended_at", "duration_seconds", "language", "outcome", "caller",
                  "caller_id_status", "callback_id", "transfer_accepted_at")



def english_callback(phone):
    phone.press_through("1", "1", "1", "1", "1", "1", "2")  # English, candidacy, five answers
    phone.press_through("1", "1", "2", "2")  # this number, morning, no clinic name, no message


def spanish_insurance_callback(phone):
    phone.press_through("2", "2", "1", "1")  # Spanish, insurance, insured, commercial plan
    phone.say("Aetna")
    phone.press_through("1", "1", "2", "2")


def accepted_transfer(phone):
    phone.press_through("2", "5")  # Spanish, patient services
    phone.accept_whisper()
    phone.dial_result("completed")


def row(app, call_sid):
    with app.app_context():
        call = db.session.scalar(sa.select(Call).where(Call.call_sid == call_sid))
        return {column: getattr(call, column) for column in CLOSED_COLUMNS}


def close(app, call_sid, settled: bool, **overrides):
    """Close the call as the status callback would, by one path or the other."""
    closing = dict(raw_from="+16175550123", caller="+16175550123", status="completed", duration=42, now=ENDED)
    closing.update(overrides)
    with app.app_context():
        if settled:
            return store.close_settled_call(Autocommit(db.engine), call_sid, **closing)
        flow = app.extensions["voiceline.flow"]
        store.finish_call(db.session, call_sid, prompts_version=flow.prompts_version, main_menu=flow.main_menu,
                          **closing)
        db.session.commit()
        return True


@pytest.mark.parametrize("script", [english_callback, spanish_insurance_callback, accepted_transfer])
def test_a_settled_call_is_closed_by_one_update_exactly_as_finish_call_would(closed_app, make_app, script):
    open_app = make_app()  # a transfer needs patient services open
    app = open_app if script is accepted_transfer else closed_app
    fast, slow = Phone(app), Phone(app, from_number="+16175550124")
    for phone in (fast, slow):
        phone.call()
        script(phone)
    assert close(app, fast.call_sid, settled=True)
    close(app, slow.call_sid, settled=False)
    fast_row, slow_row = row(app, fast.call_sid), row(app, slow.call_sid)
    fast_row.pop("caller"), slow_row.pop("caller")
    if script is not accepted_transfer:  # each call has its own request
        assert fast_row.pop("callback_id") != slow_row.pop("callback_id")
    accepted = fast_row.pop("transfer_accepted_at"), slow_row.pop("transfer_accepted_at")
    assert all(accepted) if script is accepted_transfer else not any(accepted)
    assert fast_row == slow_row
    assert fast_row["ended_at"].replace(tzinfo=dt.UTC) == ENDED and fast_row["duration_seconds"] == 42
    expected = {english_callback: ("en", "callback_requested"), spanish_insurance_callback: ("es", "callback_requested"),
                accepted_transfer: ("es", "transferred")}[script]
    assert (fast_row["language"], fast_row["outcome"]) == expected


def test_a_second_status_callback_keeps_when_the_call_ended(closed_app):
    phone = Phone(closed_app)
    phone.call()
    english_callback(phone)
    assert close(closed_app, phone.call_sid, settled=True)
    assert close(closed_app, phone.call_sid, settled=True, now=ENDED + dt.timedelta(minutes=9), duration=None)
    closed = row(closed_app, phone.call_sid)
    assert closed["ended_at"].replace(tzinfo=dt.UTC) == ENDED and closed["duration_seconds"] == 42


def test_a_caller_id_learned_at_the_end_is_kept_with_its_status(closed_app):
    phone = Phone(closed_app, from_number="anonymous")
    phone.call()
    phone.press_through("1", "5", "6175550166", "1", "1", "2", "2")  # keyed a number, then a callback
    assert row(closed_app, phone.call_sid)["caller"] is None
    assert close(closed_app, phone.call_sid, settled=True, raw_from="+16175550155", caller="+16175550155")
    closed = row(closed_app, phone.call_sid)
    assert (closed["caller"], closed["caller_id_status"]) == ("+16175550155", "valid")


@pytest.mark.parametrize("status", ["in-progress", "ringing"])
def test_a_status_that_is_not_final_is_left_to_finish_call(closed_app, status):
    phone = Phone(closed_app)
    phone.call()
    english_callback(phone)
    assert not close(closed_app, phone.call_sid, settled=True, status=status)
    assert row(closed_app, phone.call_sid)["twilio_status"] is None


def test_a_late_status_that_is_not_final_leaves_an_ended_call_ended(closed_app):
    """Status callbacks come out of order: an "in-progress" after "completed" changes nothing."""
    phone = Phone(closed_app)
    phone.call()
    phone.press("1")
    phone.hang_up("completed")
    phone.hang_up("in-progress")
    closed = row(closed_app, phone.call_sid)
    assert (closed["twilio_status"], closed["ended_at"] is not None) == ("completed", True)


def test_a_call_that_may_be_missed_is_left_to_finish_call(closed_app):
    phone = Phone(closed_app)
    phone.call()
    phone.press_through("1", "1", "1")  # one prescreen answer, then hangs up
    assert not close(closed_app, phone.call_sid, settled=True)
    assert row(closed_app, phone.call_sid)["ended_at"] is None
    phone.hang_up()  # through the webhook: the missed call is queued
    with closed_app.app_context():
        request = db.session.scalar(sa.select(CallbackRequest))
    assert request.missed and request.answers == {"age_18_or_older": "yes"}
    assert row(closed_app, phone.call_sid)["outcome"] == "missed"


def test_a_status_callback_racing_the_final_step_waits_for_it(closed_app):
    """The caller hangs up as their last key press is being stored: Twilio's status callback
    arrives while the callback request's transaction is open. It must wait for it (not queue
    a missed call for the same phone, and not deadlock with it)."""
    phone = Phone(closed_app)
    phone.call()
    phone.press_through("1", "1", "1", "1", "1", "1", "2")  # English, candidacy, five answers
    phone.press_through("1", "1", "2")  # this number, morning, no clinic name: next, the message offer
    responses = []
    with closed_app.app_context():
        flow = closed_app.extensions["voiceline.flow"]
        request = intake.request_from_call(
            db.session, call_sid=phone.call_sid, caller=phone.from_number, language="en", reason="candidacy",
            prompts_version=flow.prompts_version, answers={}, recording_sid=None)
        assert request is not None
        hang_up = threading.Thread(target=lambda: responses.append(twilio_post(
            closed_app.test_client(), "/voice/status", phone.fields(CallStatus="completed", CallDuration="30"))))
        hang_up.start()
        wait_until_a_query_waits_for_a_lock(closed_app, "the status callback")
        db.session.commit()  # the final step's transaction: must not be the victim of a deadlock
    hang_up.join(timeout=30)
    assert not hang_up.is_alive() and responses[0].status_code == 200
    [stored] = stored_requests(closed_app)
    assert (stored.reason, stored.missed, stored.requested_by_caller) == ("candidacy", False, True)
    closed = row(closed_app, phone.call_sid)
    assert (closed["outcome"], closed["twilio_status"], closed["duration_seconds"]) == ("callback_requested",
                                                                                         "completed", 30)
