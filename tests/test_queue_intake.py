"""How requests reach the queue: dedupe per phone, missed calls, Twilio retries."""


import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from tests.factories import stored_requests
from tests.phone import Phone, parse, twilio_post
from tests.staff import candidacy_call
from voiceline.extensions import db
from voiceline.models import Call, CallbackRequest, CallEvent, SafetyEvent
from voiceline.models.callbacks import PRIORITY_MISSED, PRIORITY_REQUESTED


def count(app, model):
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_repeat_caller_updates_the_open_request(closed_app):
    first = candidacy_call(closed_app, answers=("1", "1", "2", "1", "2"), window="1")
    second = candidacy_call(closed_app, answers=("1", "1", "1", "1", "2"), window="3")
    [request] = stored_requests(closed_app)
    assert request.answers["tried_two_antidepressants"] == "yes"  # the newer answer wins
    assert request.preferred_window == "evening"
    assert request.call_sid == second.call_sid
    with closed_app.app_context():
        linked = db.session.scalars(sa.select(Call.callback_id).where(
            Call.call_sid.in_([first.call_sid, second.call_sid]))).all()
    assert linked == [request.id, request.id]


def test_a_caller_who_asks_again_after_our_attempt_is_offered_at_once(closed_app):
    """RETRY_AFTER_MINUTES spaces out the calls we make; a caller phoning back (perhaps
    after our voicemail) has asked again, and Next offers them at once."""
    import datetime as dt

    from tests import factories
    from voiceline.models import now_utc
    from voiceline.queue import work

    candidacy_call(closed_app)
    [request] = stored_requests(closed_app)
    ana = factories.staff(closed_app)
    rules = work.Policy.from_config(closed_app.config)
    with closed_app.app_context():
        staff = db.session.get(type(ana), ana.id)
        work.claim(db.session, request.id, staff, now_utc(), rules)
        work.log_attempt(db.session, request.id, staff, "left_voicemail", None, now_utc(), rules)
        db.session.commit()
        assert db.session.get(CallbackRequest, request.id).last_attempt_at is not None
    candidacy_call(closed_app)  # they call back and ask again
    with closed_app.app_context():
        assert db.session.get(CallbackRequest, request.id).last_attempt_at is None
        found = work.claim_next(db.session, db.session.get(type(ana), ana.id), now_utc() + dt.timedelta(minutes=1),
                                rules)
        assert found is not None and found.id == request.id


def test_a_caller_keying_in_someone_elses_number_overrules_nothing(closed_app):
    """Anyone who knows a number can key it in: they may add to its open request, never make
    the line leave the clinic's name on that phone, or replace what its owner told us."""
    owner = candidacy_call(closed_app, from_number="+16175550199", answers=("1", "1", "2", "1", "2"),
                           window="2", message=True)  # afternoon, no clinic name on voicemail
    stranger = Phone(closed_app, from_number="+12125550111")
    stranger.call()
    stranger.press_through("1", "1", "1", "1", "1", "1", "1")  # English, candidacy, five answers
    stranger.press_through("2", "6175550199", "1")  # another number: the owner's
    stranger.press_through("1", "1")  # mornings; yes, name the clinic on voicemail
    stranger.press("1")  # record a message
    record = stranger.doc.find("Record")
    stranger.post(record.get("action"), RecordingSid="RE" + "7" * 32, Digits="#", RecordingDuration="5",
                  RecordingUrl=f"https://api.twilio.com/2010-04-01/Accounts/AC{'1' * 32}/Recordings/RE{'7' * 32}")
    # What the stranger hears back is what they chose, never what the owner told us.
    assert "in the morning" in stranger.text() and "afternoon" not in stranger.text()
    assert "we won't say our clinic's name" in stranger.text()  # a "yes" counts only from the phone itself
    stranger.hang_up()
    [request] = stored_requests(closed_app)
    assert request.reason == "candidacy"
    assert request.phone == "+16175550199"
    assert request.voicemail_ok is False and request.preferred_window == "afternoon"
    assert request.recording_sid == owner.recording_sid
    assert request.answers["tried_two_antidepressants"] == "no"  # the owner's answer stands
    assert request.call_sid == stranger.call_sid  # linked, so the request page shows "Called from"


def test_consent_to_name_the_clinic_counts_only_from_that_phone(closed_app):
    phone = Phone(closed_app, from_number="+12125550111")
    phone.call()
    phone.press_through("1", "5")  # English, patient services (closed: a callback request)
    phone.press_through("2", "6175550188", "1")  # another number
    phone.press_through("4", "1", "2")  # any time; yes, name the clinic; no message
    assert "we won't say our clinic's name" in phone.text()
    [request] = stored_requests(closed_app)
    assert (request.phone, request.voicemail_ok) == ("+16175550188", False)
    own = Phone(closed_app, from_number="+16175550199")
    own.call()
    own.press_through("1", "5", "1", "4", "1", "2")  # this number; any time; yes; no message
    assert "we may say our clinic's name" in own.text()
    assert {r.phone: r.voicemail_ok for r in stored_requests(closed_app)}["+16175550199"] is True


def test_a_no_from_anyone_withdraws_consent_to_name_the_clinic(closed_app):
    """The owner said yes from their own phone; someone keying in that number says no. The
    line goes by the safer answer: a "no" from anyone lowers consent, only a "yes" needs the
    phone itself (intake._merged). Nothing else the owner told us is overruled."""
    owner = Phone(closed_app, from_number="+16175550199")
    owner.call()
    owner.press_through("1", "5", "1", "1", "1", "2")  # this number; mornings; yes, name the clinic; no message
    assert "we may say our clinic's name" in owner.text()
    [before] = stored_requests(closed_app)
    assert (before.voicemail_ok, before.preferred_window) == (True, "morning")
    stranger = Phone(closed_app, from_number="+12125550111")
    stranger.call()
    stranger.press_through("1", "5", "2", "6175550199", "1")  # another number: the owner's
    stranger.press_through("3", "2", "2")  # evenings; no, do not name the clinic; no message
    assert "we won't say our clinic's name" in stranger.text()
    stranger.hang_up()
    [request] = stored_requests(closed_app)
    assert request.id == before.id and request.phone == "+16175550199"
    assert request.voicemail_ok is False
    assert request.preferred_window == "morning"  # the owner's, not the stranger's
    assert request.call_sid == stranger.call_sid
    # The owner's own "yes" again, from their phone, counts again.
    owner = Phone(closed_app, from_number="+16175550199")
    owner.call()
    owner.press_through("1", "5", "1", "1", "1", "2")
    assert [r.voicemail_ok for r in stored_requests(closed_app)] == [True]


def test_a_closed_request_does_not_absorb_a_new_one(closed_app):
    candidacy_call(closed_app)
    with closed_app.app_context():
        db.session.execute(sa.update(CallbackRequest).values(status="closed"))
        db.session.commit()
    candidacy_call(closed_app)
    assert [r.status for r in stored_requests(closed_app)] == ["closed", "open"]


def test_different_phones_get_separate_requests(closed_app):
    candidacy_call(closed_app, from_number="+16175550123")
    candidacy_call(closed_app, from_number="+16175550124")
    assert len(stored_requests(closed_app)) == 2


def test_the_database_enforces_one_open_request_per_phone(app):
    with app.app_context():
        for _ in range(2):
            db.session.add(CallbackRequest(phone="+16175550123", language="en", reason="general",
                                           call_sid="CA" + "0" * 32, prompts_version="v"))
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()


def test_missed_call_after_the_main_menu_lands_in_the_queue(app):
    phone = Phone(app)
    phone.call()
    phone.press_through("1", "1", "1", "2")  # two prescreen answers, then hangs up
    phone.hang_up()
    [request] = stored_requests(app)
    assert (request.reason, request.missed, request.requested_by_caller) == ("missed_call", True, False)
    assert request.priority == PRIORITY_MISSED > PRIORITY_REQUESTED
    assert request.answers == {"age_18_or_older": "yes", "mood_disorder_diagnosis": "no"}
    assert request.phone == "+16175550123" and request.language == "en"
    with app.app_context():
        call = db.session.scalar(sa.select(Call).where(Call.call_sid == phone.call_sid))
        assert (call.outcome, call.twilio_status, call.duration_seconds) == ("missed", "completed", 60)
        assert call.ended_at is not None


def test_hanging_up_at_the_greeting_is_not_a_missed_call(app):
    phone = Phone(app)
    phone.call()
    phone.hang_up()
    assert stored_requests(app) == []


@pytest.mark.parametrize("status", ["completed", "canceled", "failed", "busy", "no-answer"])
def test_status_callbacks_repeated_and_out_of_order_make_one_item(app, status):
    phone = Phone(app)
    phone.call()
    phone.press("1")
    phone.hang_up(status)
    phone.hang_up(status)
    twilio_post(phone.client, "/voice/status", phone.fields(CallStatus="in-progress"))
    assert len(stored_requests(app)) == 1


def test_missed_call_from_a_phone_with_an_open_request_adds_nothing(closed_app):
    asked = candidacy_call(closed_app)
    [before] = stored_requests(closed_app)
    phone = Phone(closed_app)
    phone.call()
    phone.press_through("2", "1", "2")  # Spanish this time, two answers, then hangs up
    phone.hang_up()
    [request] = stored_requests(closed_app)
    assert request.requested_by_caller and not request.missed
    assert (request.language, request.call_sid, request.answers) == ("en", asked.call_sid, before.answers)
    with closed_app.app_context():
        call = db.session.scalar(sa.select(Call).where(Call.call_sid == phone.call_sid))
    assert (call.callback_id, call.outcome) == (request.id, "missed")


def test_caller_who_then_asks_for_a_callback_upgrades_the_missed_item(closed_app):
    phone = Phone(closed_app)
    phone.call()
    phone.press("1")
    phone.hang_up()
    assert stored_requests(closed_app)[0].missed
    candidacy_call(closed_app)
    [request] = stored_requests(closed_app)
    assert (request.missed, request.requested_by_caller, request.reason, request.priority) == (
        False, True, "candidacy", PRIORITY_REQUESTED)


def test_withheld_caller_id_missed_call_cannot_be_queued(app):
    phone = Phone(app, from_number="anonymous")
    phone.call()
    phone.press("1")
    phone.hang_up()
    assert stored_requests(app) == []
    with app.app_context():
        assert db.session.scalar(sa.select(Call.outcome)) == "missed_no_number"


def test_crisis_calls_are_safety_events_not_queue_items(app):
    phone = Phone(app)
    phone.call()
    phone.press_through("1", "9")
    phone.dial_result("completed")
    phone.hang_up()
    assert stored_requests(app) == []
    assert count(app, SafetyEvent) == 1


def test_accepted_transfer_is_not_a_missed_call_even_if_the_status_comes_first(app):
    phone = Phone(app)
    phone.call()
    phone.press_through("1", "5")
    phone.accept_whisper()
    dial = phone.doc.find("Dial")
    phone.hang_up()  # the status callback overtakes the dial action
    phone.post(dial.get("action"), DialCallStatus="completed")
    assert stored_requests(app) == []


def test_number_entered_before_hanging_up_is_used_for_the_missed_item(closed_app):
    phone = Phone(closed_app, from_number="anonymous")
    phone.call()
    phone.press_through("1", "5", "6175550166", "1")
    phone.hang_up()  # before the best-time question
    [request] = stored_requests(closed_app)
    assert request.phone == "+16175550166" and request.missed


def test_retried_webhooks_have_the_effect_of_one(closed_app):
    phone = Phone(closed_app)
    first = phone.call()
    again = parse(twilio_post(phone.client, "/voice/incoming", phone.fields(CallStatus="ringing")))
    assert [e.tag for e in first] == [e.tag for e in again]
    phone.press("1")
    url, digits = phone.action(), "1"
    responses = [parse(twilio_post(phone.client, url, phone.fields(Digits=digits))) for _ in range(3)]
    assert len({" ".join(s.text for s in r.iter("Say")) for r in responses}) == 1
    phone.doc = responses[0]
    phone.press_through("1", "1", "1", "2")  # four prescreen answers
    phone.press_through("1", "1", "1", "2")  # the fifth, this number, morning, no clinic name
    final_url = phone.action()  # the message offer: "2" skips it and stores the request
    final = [parse(twilio_post(phone.client, final_url, phone.fields(Digits="2"))) for _ in range(2)]
    assert [s.text for s in final[0].iter("Say")] == [s.text for s in final[1].iter("Say")]
    phone.hang_up()
    phone.hang_up()
    assert count(closed_app, Call) == 1
    assert len(stored_requests(closed_app)) == 1
    with closed_app.app_context():
        steps = db.session.scalars(sa.select(CallEvent.step).where(CallEvent.call_sid == phone.call_sid)).all()
    assert sorted(steps) == list(range(1, 12))  # the greeting is the call row itself


def test_callback_request_carries_the_prompts_version(closed_app):
    candidacy_call(closed_app)
    version = closed_app.extensions["voiceline.flow"].prompts_version
    assert stored_requests(closed_app)[0].prompts_version == version
    with closed_app.app_context():
        assert db.session.scalar(sa.select(Call.prompts_version)) == version
