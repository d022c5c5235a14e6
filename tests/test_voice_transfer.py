"""Connecting to patient services: whisper, accept, and every way a transfer can fail."""

import datetime as dt

import pytest
import sqlalchemy as sa

from tests.phone import SATURDAY_EVENING, Phone, new_sid, parse, query, twilio_post
from voiceline.extensions import db
from voiceline.models import Call, CallbackRequest, CallEvent
from voiceline.voice import store

UNREACHABLE = {
    "sqlite": "sqlite:////nonexistent-directory/for/sure/voiceline.db",
    "postgresql": "postgresql://postgres@127.0.0.1:9/voiceline",  # discard port: refused at once
}


def to_transfer(phone, lang_key="1", option="5"):
    phone.call()
    phone.press(lang_key)
    phone.press(option)
    return phone.doc


def test_open_transfer_dials_patient_services_with_a_whisper(phone):
    doc = to_transfer(phone)
    dial = doc.find("Dial")
    assert dial.get("timeout") == "25"
    assert dial.get("answerOnBridge") == "true"  # the caller hears ringing while the coordinator hears the whisper
    assert "/voice/dial-result?" in dial.get("action")
    number = dial.find("Number")
    assert number.text == "+18885668774"
    assert query(number.get("url")) == {"call": phone.call_sid, "lang": "en", "reason": "general"}
    assert phone.spoken() == ["Please hold while I connect you with a patient services coordinator."]


@pytest.mark.parametrize("lang_key,option,reason_words,language_word", [
    ("1", "4", "an existing patient", "English"),
    ("2", "5", "a general question", "Spanish"),
    ("2", "2", "insurance and cost", "Spanish"),
])
def test_whisper_tells_the_coordinator_reason_and_language(phone, lang_key, option, reason_words, language_word):
    to_transfer(phone, lang_key, option)
    if option == "2":  # insurance: self-pay, then the transfer
        phone.press("2")
    number = phone.doc.find("Dial/Number")
    whisper = parse(twilio_post(phone.client, number.get("url"), {"CallSid": "CA" + "2" * 32,
                                                                   "ParentCallSid": phone.call_sid}))
    gather = whisper.find("Gather")
    text = gather.find("Say").text
    assert reason_words in text and language_word in text and "Press 1 to accept" in text
    assert gather.find("Say").get("language") == "en-US"  # coordinators hear English
    assert [child.tag for child in whisper] == ["Gather", "Hangup"]  # no answer: hang up the coordinator leg


def test_a_caller_who_never_chose_a_language_is_not_announced_as_english(phone):
    phone.call()
    for _ in range(3):
        phone.silence()  # at the bilingual greeting
    number = phone.doc.find("Dial/Number")
    whisper = parse(twilio_post(phone.client, number.get("url"), {"CallSid": "CA" + "2" * 32,
                                                                   "ParentCallSid": phone.call_sid}))
    text = whisper.find("Gather/Say").text
    assert "The caller speaks English or Spanish, they did not choose." in text


@pytest.mark.parametrize("status", ["completed", "answered"])
def test_accepted_transfer_ends_well_and_is_recorded(app, phone, status):
    """Twilio ends a bridged <Dial> with "completed"; "answered" (the call still up when the
    action runs) is just as much a connected transfer, never a trip to callback capture."""
    to_transfer(phone)
    bridged = phone.accept_whisper()
    assert list(bridged) == []  # an empty response connects the call
    phone.dial_result(status, DialCallDuration="300")
    assert phone.verbs() == ["Say", "Hangup"]
    assert phone.spoken()[0].startswith("Thank you for calling") and phone.spoken()[0].endswith("Goodbye.")
    phone.hang_up()
    with app.app_context():
        call = db.session.scalar(sa.select(Call).where(Call.call_sid == phone.call_sid))
        assert call.transfer_accepted_at is not None and call.outcome == "transferred"
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CallbackRequest)) == 0
        last = db.session.scalars(sa.select(CallEvent).where(CallEvent.call_sid == phone.call_sid)
                                  .order_by(CallEvent.step.desc())).first()
        assert (last.choice, last.presented, last.outcome) == (status, "transfer.done", "transferred")


def test_answered_without_the_whisper_accepted_is_not_a_transfer(app, phone):
    """A voicemail box at patient services answers too: without the coordinator's 1, on to a callback."""
    to_transfer(phone)
    phone.dial_result("answered")
    assert phone.spoken()[0].startswith("I'm sorry, all of our coordinators are helping other callers")
    assert query(phone.action())["phase"] == "caller_id"


def test_whisper_not_accepted_hangs_up_the_coordinator_leg(phone):
    to_transfer(phone)
    number = phone.doc.find("Dial/Number")
    whisper = parse(twilio_post(phone.client, number.get("url"), {"CallSid": "CA" + "3" * 32}))
    answer = parse(twilio_post(phone.client, whisper.find("Gather").get("action"),
                               {"CallSid": "CA" + "3" * 32, "Digits": "5"}))
    assert [child.tag for child in answer] == ["Hangup"]


@pytest.mark.parametrize("status", ["busy", "no-answer", "failed", "canceled", "completed", ""])
def test_anything_but_an_accepted_call_leads_to_callback_capture(app, phone, status):
    """'completed' without the whisper accepted is a voicemail box at patient services."""
    to_transfer(phone)
    phone.dial_result(status)
    spoken = phone.spoken()
    assert spoken[0].startswith("I'm sorry, all of our coordinators are helping other callers")
    assert "ending in 0 1 2 3" in phone.text()
    assert "/voice/step/callback?" in phone.action() and query(phone.action())["phase"] == "caller_id"
    with app.app_context():
        assert db.session.scalar(sa.select(Call.transfer_accepted_at).where(Call.call_sid == phone.call_sid)) is None


def test_busy_then_callback_keeps_the_reason(app, phone):
    phone.call()
    phone.press_through("1", "1", "1", "1", "1", "1", "1")
    phone.dial_result("busy")
    phone.press_through("1", "2", "2")
    phone.press("2")  # no message
    with app.app_context():
        request = db.session.scalar(sa.select(CallbackRequest))
    assert request.reason == "candidacy" and request.phone == "+16175550123"


@pytest.mark.parametrize("lang_key,expected", [
    ("1", "Patient services is closed right now. Our hours are Monday through Friday, 8 AM to 6 PM, Eastern time."),
    ("2", "Atención al paciente está cerrada en este momento. Atendemos llamadas de lunes a viernes, "
          "de las 8 de la mañana a las 6 de la tarde, hora del Este."),
])
def test_closed_states_the_hours_and_offers_a_callback(make_app, lang_key, expected):
    app = make_app(BUSINESS_HOURS="Mon-Fri 08:00-18:00")
    app.extensions["voiceline.clock"] = lambda: SATURDAY_EVENING
    phone = Phone(app)
    to_transfer(phone, lang_key)
    assert phone.doc.find("Dial") is None
    assert phone.text().startswith(expected)
    assert query(phone.action())["phase"] == "caller_id"


def test_holiday_is_closed_and_said_so(make_app):
    app = make_app(BUSINESS_HOURS="Mon-Fri 08:00-18:00")
    app.extensions["voiceline.clock"] = lambda: dt.datetime(2026, 11, 26, 15, 0, tzinfo=dt.UTC)  # Thanksgiving
    phone = Phone(app)
    to_transfer(phone)
    assert "We're closed today for the holiday." in phone.text()
    assert phone.doc.find("Dial") is None


def test_twenty_four_seven_is_open_on_holidays(make_app):
    app = make_app(BUSINESS_HOURS="24/7")
    app.extensions["voiceline.clock"] = lambda: dt.datetime(2026, 12, 25, 9, 0, tzinfo=dt.UTC)
    phone = Phone(app)
    assert to_transfer(phone).find("Dial") is not None


def test_dial_timeout_is_a_setting(make_app):
    phone = Phone(make_app(DIAL_TIMEOUT_SECONDS="15", PATIENT_SERVICES_NUMBER="+16175551000"))
    dial = to_transfer(phone).find("Dial")
    assert dial.get("timeout") == "15" and dial.find("Number").text == "+16175551000"


# ---- the coordinator's leg when something breaks ---------------------------------------------------
def coordinator_leg(phone):
    """The whisper URL Twilio fetches when patient services picks up, and the child call's fields."""
    number = phone.doc.find("Dial/Number")
    child = {"CallSid": new_sid(), "ParentCallSid": phone.call_sid, "From": phone.from_number, "To": number.text,
             "CallStatus": "in-progress", "Direction": "outbound-dial"}
    return number.get("url"), child


def broken(error):
    def fail(*args, **kwargs):
        raise error
    return fail


def never_the_callers_fallback(doc):
    """What the caller hears when things break (an apology and a <Dial> to patient services)
    must not be played to the coordinator who answered: it would ring patient services again."""
    assert doc.find(".//Dial") is None and doc.find(".//Say") is None


def test_a_whisper_that_fails_connects_the_coordinator(app, phone, monkeypatch, caplog):
    to_transfer(phone)
    url, child = coordinator_leg(phone)
    monkeypatch.setattr(app.extensions["voiceline.engine"], "whisper", broken(
        sa.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))))
    doc = parse(twilio_post(phone.client, url, child))
    never_the_callers_fallback(doc)
    assert list(doc) == []  # an empty response: the coordinator is connected, unannounced
    assert any("voice webhook failed" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("error", [RuntimeError("a bug"),
                                   sa.exc.OperationalError("UPDATE calls ...", {}, Exception("deadlock detected"))],
                         ids=["bug", "database"])
def test_an_accepted_whisper_that_cannot_be_stored_still_connects(app, phone, monkeypatch, error):
    """The coordinator pressed 1: they are connected (an empty response), whatever broke while
    the acceptance was stored: a database error (stored on a best-effort basis) or a bug."""
    to_transfer(phone)
    url, child = coordinator_leg(phone)
    whisper = parse(twilio_post(phone.client, url, child))
    monkeypatch.setattr(store, "accept_transfer", broken(error))
    doc = parse(twilio_post(phone.client, whisper.find("Gather").get("action"), {**child, "Digits": "1"}))
    never_the_callers_fallback(doc)
    assert list(doc) == []
    with app.app_context():  # the acceptance could not be stored
        assert db.session.scalar(sa.select(Call.transfer_accepted_at).where(Call.call_sid == phone.call_sid)) is None


def test_a_bridged_dial_is_a_transfer_even_if_the_acceptance_was_not_stored(app, phone, monkeypatch):
    """Twilio's DialBridged says the calls were connected, which the whisper allows only after
    the coordinator pressed 1: the caller, who has just talked to them, is not asked for a callback."""
    to_transfer(phone)
    url, child = coordinator_leg(phone)
    whisper = parse(twilio_post(phone.client, url, child))
    monkeypatch.setattr(store, "accept_transfer", broken(
        sa.exc.OperationalError("UPDATE calls ...", {}, Exception("deadlock detected"))))
    twilio_post(phone.client, whisper.find("Gather").get("action"), {**child, "Digits": "1"})
    phone.dial_result("completed", DialBridged="true", DialCallDuration="240")
    assert phone.verbs() == ["Say", "Hangup"] and phone.spoken()[0].startswith("Thank you for calling")
    with app.app_context():
        last = db.session.scalars(sa.select(CallEvent).where(CallEvent.call_sid == phone.call_sid)
                                  .order_by(CallEvent.step.desc())).first()
        assert last.outcome == "transferred"


def test_not_bridged_and_not_accepted_goes_on_to_a_callback(app, phone):
    to_transfer(phone)
    phone.dial_result("completed", DialBridged="false")
    assert query(phone.action())["phase"] == "caller_id"


def test_a_connected_transfer_ends_with_goodbye_when_the_database_is_lost_meanwhile(app, make_app, phone):
    """Never a second dial to patient services for a caller who was just talking to them."""
    to_transfer(phone)
    phone.accept_whisper()
    phone.served_by(make_app(DATABASE_URL=UNREACHABLE[app.config["SQLALCHEMY_DATABASE_URI"].split(":")[0].split("+")[0]]))
    phone.dial_result("completed", DialBridged="true")
    assert phone.verbs() == ["Say", "Hangup"] and phone.spoken()[0].startswith("Thank you for calling")
