"""Callback capture: the number, best time, voicemail consent, a message, and what is stored."""

import datetime as dt

import pytest
import sqlalchemy as sa

from tests.factories import stored_requests
from tests.phone import Phone, query, twilio_post
from voiceline.extensions import db
from voiceline.models import Call, CallbackRequest, Recording, SafetyEvent

FRIDAY_10AM = dt.datetime(2026, 11, 27, 15, 0, tzinfo=dt.UTC)



def to_capture(app, *, from_number="+16175550123", lang_key="1", option="5"):
    phone = Phone(app, from_number=from_number)
    phone.call()
    phone.press(lang_key)
    phone.press(option)
    return phone


def test_caller_id_confirmation_reads_back_the_last_four_digits(closed_app):
    phone = to_capture(closed_app, from_number="+16175550199")
    assert "ending in 0 1 9 9" in phone.text()
    assert "6 1 7" not in phone.text()  # only the last four: phones are shared
    assert phone.spoken()[-2:] == ["For yes, press 1.", "To give a different number, press 2."]


@pytest.mark.parametrize("lang_key,lang", [("1", "en"), ("2", "es")])
def test_whole_capture_is_stored_and_read_back(closed_app, lang_key, lang):
    phone = to_capture(closed_app, lang_key=lang_key)
    phone.press("1")  # this number
    phone.press("2")  # afternoon
    phone.press("1")  # voicemail may name the clinic
    phone.press("2")  # no message
    text = phone.text()
    assert phone.verbs()[-1] == "Hangup"
    if lang == "en":
        assert "We expect to call you back at the number ending in 0 1 2 3, on Monday, in the afternoon." in text
        assert "we may say our clinic's name" in text
    else:
        assert "número que termina en 0 1 2 3, el lunes, por la tarde." in text
        assert "podremos decir el nombre de la clínica" in text
    [request] = stored_requests(closed_app)
    assert (request.phone, request.language, request.reason, request.status) == ("+16175550123", lang, "general", "open")
    assert (request.preferred_window, request.voicemail_ok, request.recording_sid) == ("afternoon", True, None)
    assert request.requested_by_caller and not request.missed
    assert request.call_sid == phone.call_sid
    assert request.prompts_version == closed_app.extensions["voiceline.flow"].prompts_version
    with closed_app.app_context():
        call = db.session.scalar(sa.select(Call).where(Call.call_sid == phone.call_sid))
        assert (call.callback_id, call.outcome) == (request.id, "callback_requested")


def test_callback_during_open_hours_expects_today(make_app):
    app = make_app(BUSINESS_HOURS="Mon-Fri 08:00-18:00")
    app.extensions["voiceline.clock"] = lambda: FRIDAY_10AM
    phone = to_capture(app)
    phone.dial_result("busy")
    phone.press_through("1", "2", "2", "2")
    assert "ending in 0 1 2 3, today, in the afternoon." in phone.text()
    assert "we won't say our clinic's name" in phone.text()


@pytest.mark.parametrize("caller_id", ["anonymous", "restricted", "+266696687", "+7378742833", "", "unknown"])
def test_withheld_or_invalid_caller_id_must_key_a_number(closed_app, caller_id):
    phone = to_capture(closed_app, from_number=caller_id)
    assert "ending in" not in phone.text()
    gather = phone.gather()
    assert query(gather.get("action"))["phase"] == "number"
    assert gather.get("numDigits") == "10" and gather.get("finishOnKey") == "#"
    phone.press("2125550147")
    assert "You entered 2 1 2, 5 5 5, 0 1 4 7." in phone.text()
    phone.press_through("1", "4", "2", "2")
    [request] = stored_requests(closed_app)
    assert request.phone == "+12125550147" and request.preferred_window == "any"
    assert request.voicemail_ok is False
    with closed_app.app_context():
        call = db.session.scalar(sa.select(Call).where(Call.call_sid == phone.call_sid))
        assert call.caller is None
        assert call.caller_id_status == ("withheld" if caller_id.lower() in ("anonymous", "restricted", "", "unknown") else "invalid")


def test_a_different_number_can_be_given_and_re_entered(closed_app):
    phone = to_capture(closed_app)
    phone.press("2")
    phone.press("9115550123")  # area code 911 does not exist
    assert phone.spoken()[0] == "Sorry, that doesn't look like a U.S. phone number."
    phone.press("617555012")  # nine digits
    assert phone.spoken()[0] == "Sorry, that doesn't look like a U.S. phone number."
    phone.press("6175550188")
    phone.press("2")  # enter it again
    phone.press("16175550177")  # a leading 1 is fine
    assert "You entered 6 1 7, 5 5 5, 0 1 7 7." in phone.text()
    phone.press_through("1", "3", "2", "2")
    [request] = stored_requests(closed_app)
    assert request.phone == "+16175550177" and request.preferred_window == "evening"
    assert "0 1 7 7" in phone.text()


@pytest.mark.parametrize("lang_key, says", [
    ("1", "Sorry, please leave out the 1 at the start. Just the area code and number."),
    ("2", "Disculpe, no marque el 1 al principio. Solo el código de área y el número."),
])
def test_a_number_keyed_with_a_leading_1_is_asked_again_without_it(closed_app, lang_key, says):
    """The Gather takes ten keys, so 1 617 555 0123 arrives as 1617555012 (no area code
    starts with 1): the caller is told what to leave out, not that the number is wrong."""
    phone = to_capture(closed_app, lang_key=lang_key)
    phone.press("2")  # another number
    phone.press("1617555012")
    assert phone.spoken()[0] == says
    assert query(phone.gather().get("action"))["phase"] == "number"
    phone.press("6175550123")
    assert "6 1 7, 5 5 5, 0 1 2 3" in phone.text()


def test_the_number_check_asked_again_repeats_the_number(closed_app):
    phone = to_capture(closed_app, from_number="anonymous")
    phone.silence()
    assert phone.spoken()[0] == "Sorry, I didn't hear a number."
    phone.press("6175550188")
    phone.press("7")  # not one of the choices
    assert phone.spoken()[0] == "Sorry, that's not one of the choices."
    assert "You entered 6 1 7, 5 5 5, 0 1 8 8." in phone.text()
    assert "6175550188" not in phone.action()  # read back from the database, never put in a URL
    phone.silence()
    assert "You entered 6 1 7, 5 5 5, 0 1 8 8." in phone.text()
    phone.press_through("1", "4", "2", "2")
    [request] = stored_requests(closed_app)
    assert request.phone == "+16175550188"


def test_the_number_check_in_spanish_repeats_the_number_too(closed_app):
    phone = to_capture(closed_app, from_number="anonymous", lang_key="2")
    phone.silence()
    assert phone.spoken()[0] == "Disculpe, no escuché ningún número."
    phone.press("6175550188")
    phone.press("7")
    assert phone.spoken()[0] == "Disculpe, esa no es una de las opciones."
    assert "Usted marcó 6 1 7, 5 5 5, 0 1 8 8." in phone.text()
    assert phone.languages() == {"es-US"}


@pytest.mark.parametrize("lang_key, why", [
    ("1", "Because that is not the phone you are calling from, we won't say our clinic's name if we reach "
          "voicemail."),
    ("2", "Como ese no es el teléfono desde el que llama, si nos contesta el buzón de voz no diremos el nombre "
          "de la clínica."),
])
def test_a_yes_to_voicemail_for_a_keyed_in_number_is_read_back_as_no_with_the_reason(closed_app, lang_key, why):
    """Consent to name the clinic counts only from the phone itself (a "no" from anyone still
    withdraws it, so the question is asked): the caller who said yes hears why it is no."""
    phone = to_capture(closed_app, from_number="+12125550111", lang_key=lang_key)
    phone.press_through("2", "6175550188", "1", "4", "1", "2")  # another number; any time; yes; no message
    assert why in phone.spoken()
    assert not any(s.startswith(("If we reach your voicemail", "Si nos contesta su buzón")) for s in phone.spoken())
    [request] = stored_requests(closed_app)
    assert (request.phone, request.voicemail_ok) == ("+16175550188", False)


def _owner_and_stranger(app):
    """The owner of +16175550199 asked for mornings and let us name the clinic; a stranger
    keys in that number, asks for evenings and says yes (not counted)."""
    owner = Phone(app, from_number="+16175550199")
    owner.call()
    owner.press_through("1", "5", "1", "1", "1", "2")  # this number; mornings; yes; no message
    assert "If we reach your voicemail, we may say our clinic's name." in owner.spoken()
    stranger = Phone(app, from_number="+12125550111")
    stranger.call()
    stranger.press_through("1", "5", "2", "6175550199", "1", "3", "1")  # the owner's number; evenings; yes
    return stranger


def test_a_retried_final_step_from_another_phone_reads_back_the_same(closed_app):
    """Twilio's retry of the step that stored the request says what the first answer said,
    never the owner's choices stored on that number's request."""
    stranger = _owner_and_stranger(closed_app)
    final = stranger.action()
    first = twilio_post(stranger.client, final, stranger.fields(Digits="2")).get_data(as_text=True)
    retry = twilio_post(stranger.client, final, stranger.fields(Digits="2")).get_data(as_text=True)
    assert "in the evening" in first and "not the phone you are calling from" in first
    assert retry == first


def test_a_key_after_an_empty_message_does_not_read_the_owners_choices_to_a_stranger(closed_app):
    """Silence at the tone finishes the request; a key at the crisis offer that follows
    finishes it again, and that read-back is the stranger's own too."""
    stranger = _owner_and_stranger(closed_app)
    stranger.press("1")  # leave a message
    stranger.post(stranger.doc.find("Redirect").text)  # silence at the tone
    assert "in the evening" in stranger.text()
    stranger.press("1")  # not the crisis key
    assert "in the evening" in stranger.text() and "in the morning" not in stranger.text()
    assert "we may say our clinic's name" not in stranger.text()
    [request] = stored_requests(closed_app)
    assert (request.preferred_window, request.voicemail_ok) == ("morning", False)


@pytest.mark.parametrize("lang_key, why", [
    ("1", "Because your number was not shown on this call, we won't say our clinic's name if we reach voicemail."),
    ("2", "Como su número no apareció en esta llamada, si nos contesta el buzón de voz no diremos el nombre de la "
          "clínica."),
])
def test_a_yes_from_a_withheld_number_is_read_back_as_no_without_calling_it_another_phone(closed_app, lang_key, why):
    phone = to_capture(closed_app, from_number="anonymous", lang_key=lang_key)
    phone.press_through("3125550144", "1", "3", "1", "2")  # their number; correct; evenings; yes; no message
    assert why in phone.spoken()
    assert not any("not the phone you are calling from" in s or "no es el teléfono" in s for s in phone.spoken())
    [request] = stored_requests(closed_app)
    assert (request.phone, request.voicemail_ok) == ("+13125550144", False)


def test_a_no_to_voicemail_for_a_keyed_in_number_is_read_back_plainly(closed_app):
    """No reason to give a caller who said no, or an anonymous one who keyed their own number."""
    phone = to_capture(closed_app, from_number="anonymous")
    phone.press_through("6175550188", "1", "4", "2", "2")  # their number; correct; any time; no; no message
    assert "If we reach your voicemail, we won't say our clinic's name." in phone.spoken()
    assert not any(s.startswith("Because that is not the phone") for s in phone.spoken())


def test_a_caller_who_keys_in_their_own_number_may_consent(closed_app):
    phone = to_capture(closed_app, from_number="+12125550111")
    phone.press_through("2", "2125550111", "1", "4", "1", "2")  # "another" number: the same phone; yes
    assert "If we reach your voicemail, we may say our clinic's name." in phone.spoken()
    [request] = stored_requests(closed_app)
    assert (request.phone, request.voicemail_ok) == ("+12125550111", True)


def test_a_rejected_number_is_never_called(closed_app):
    """A number the caller said was wrong ("enter it again"), then no number at all: they hear
    that nobody will call, and nobody does, not the rejected number, not the caller ID they
    said no to."""
    phone = to_capture(closed_app, from_number="+16175550444")
    phone.press_through("2", "3125550111", "2")  # not this phone; a number; "enter it again"
    phone.silence()
    phone.silence()
    phone.silence()
    assert phone.verbs()[-1] == "Hangup" and "wasn't able to get a phone number" in phone.text()
    phone.hang_up("completed")
    assert stored_requests(closed_app) == []
    with closed_app.app_context():
        call = db.session.scalar(sa.select(Call))
        assert (call.outcome, call.callback_id) == ("no_callback_number", None)


def test_a_caller_who_said_not_this_phone_and_hung_up_is_not_called_there(closed_app):
    phone = to_capture(closed_app, from_number="+16175550445")
    phone.press("2")  # not this phone (shared, or work)
    phone.press("31255")  # hangs up halfway through the number
    phone.hang_up("completed")
    assert stored_requests(closed_app) == []


def test_a_confirmed_number_is_called_back_when_the_call_drops_after_it(closed_app):
    phone = to_capture(closed_app, from_number="+16175550446")
    phone.press_through("2", "3125550111", "1")  # not this phone; a number; "that's right"
    phone.hang_up("completed")  # at the best-time question
    [request] = stored_requests(closed_app)
    assert (request.phone, request.reason, request.answers) == ("+13125550111", "missed_call", {})


def test_three_bad_numbers_end_with_clear_instructions_and_nothing_stored(closed_app):
    phone = to_capture(closed_app, from_number="anonymous")
    phone.press("123")
    phone.silence()
    phone.press("0000000000")
    assert phone.verbs()[-1] == "Hangup"
    text = phone.text()
    assert "wasn't able to get a phone number" in text and "Our hours are" in text and "9 8 8" in text
    assert stored_requests(closed_app) == []


def test_crisis_key_alone_works_during_number_entry(closed_app):
    phone = to_capture(closed_app, from_number="anonymous")
    phone.press("9")
    assert phone.doc.find("Dial/Number").text == "988"


def test_silence_at_each_question_takes_the_safe_default(closed_app):
    phone = to_capture(closed_app)
    for _ in range(3):
        phone.silence()  # caller id question: keeps the number they call from
    for _ in range(3):
        phone.silence()  # best time: any
    for _ in range(3):
        phone.silence()  # voicemail: do not name the clinic
    for _ in range(3):
        phone.silence()  # message: skipped
    assert phone.verbs()[-1] == "Hangup"
    [request] = stored_requests(closed_app)
    assert (request.phone, request.preferred_window, request.voicemail_ok) == ("+16175550123", "any", False)


def test_voice_message_is_recorded_with_a_status_callback(closed_app):
    phone = to_capture(closed_app)
    phone.press_through("1", "1", "1")
    phone.press("1")  # record a message
    record = phone.doc.find("Record")
    assert record.get("finishOnKey") == "#9" and record.get("playBeep") == "true"  # 9: the crisis key
    assert record.get("maxLength") == "120"
    assert "/voice/recording-status" in record.get("recordingStatusCallback")
    assert phone.verbs() == ["Say", "Record", "Redirect"]
    sid = "RE" + "a" * 32
    url = f"https://api.twilio.com/2010-04-01/Accounts/AC{'1' * 32}/Recordings/{sid}"
    phone.post(record.get("action"), RecordingSid=sid, RecordingUrl=url, RecordingDuration="14", Digits="#")
    assert phone.spoken()[0] == "We recorded your message."
    status = twilio_post(phone.client, record.get("recordingStatusCallback"), {
        "CallSid": phone.call_sid, "RecordingSid": sid, "RecordingUrl": url, "RecordingDuration": "14",
        "RecordingStatus": "completed"})
    assert status.status_code == 200
    [request] = stored_requests(closed_app)
    assert request.recording_sid == sid
    with closed_app.app_context():
        recording = db.session.scalar(sa.select(Recording))
        assert (recording.call_sid, recording.url, recording.duration_seconds, recording.status) == (
            phone.call_sid, url, 14, "completed")


@pytest.mark.parametrize("keys", [(), ("1",), ("1", "1"), ("1", "1", "2")],
                         ids=["caller_id", "window", "voicemail", "message"])
def test_the_crisis_key_at_every_callback_question(closed_app, keys):
    phone = Phone(closed_app)
    phone.call()
    phone.press_through("1", "5", *keys)  # English, patient services (closed): callback capture
    assert "/voice/step/callback?" in phone.action()
    phone.press("9")
    assert phone.doc.find("Dial/Number").text == "988"
    with closed_app.app_context():
        safety = db.session.scalars(sa.select(SafetyEvent)).all()
        assert [(s.call_sid, s.dialed) for s in safety] == [(phone.call_sid, "988")]
    assert stored_requests(closed_app) == []


@pytest.mark.parametrize("lang_key, tag, connecting", [
    ("1", "en-US", "Connecting you now to the 9 8 8 Suicide and Crisis Lifeline."),
    ("2", "es-US", "Le estamos comunicando con la Línea 9 8 8 de Prevención del Suicidio y Crisis."),
])
def test_the_crisis_key_ends_a_message_and_connects_to_the_crisis_line(closed_app, lang_key, tag, connecting):
    # A message is heard only when a coordinator calls back: a crisis must not wait in it.
    phone = to_capture(closed_app, lang_key=lang_key)
    phone.press_through("1", "1", "1", "1")
    record = phone.doc.find("Record")
    assert record.get("finishOnKey") == "#9"
    sid = "RE" + "d" * 32
    phone.post(record.get("action"), RecordingSid=sid, RecordingDuration="6", Digits="9",
               RecordingUrl="https://api.twilio.com/x/" + sid)
    assert phone.verbs() == ["Say", "Dial"]
    assert phone.doc.find("Dial/Number").text == "988"
    assert phone.spoken()[0].startswith(connecting) and phone.languages() == {tag}
    with closed_app.app_context():
        safety = db.session.scalars(sa.select(SafetyEvent)).all()
        assert [(s.call_sid, s.dialed) for s in safety] == [(phone.call_sid, "988")]
    # Every callback question was answered: the request stands, with what they had said, as
    # when the key ends an empty recording. A coordinator calls back; the queue shows the
    # crisis line was used.
    [request] = stored_requests(closed_app)
    assert (request.requested_by_caller, request.recording_sid, request.call_sid) == (True, sid, phone.call_sid)
    with closed_app.app_context():
        assert db.session.scalar(sa.select(Recording.recording_sid)) == sid


def test_the_crisis_key_ending_a_message_reaches_988_even_if_the_request_cannot_be_stored(closed_app, monkeypatch):
    from voiceline.queue import intake

    phone = to_capture(closed_app)
    phone.press_through("1", "1", "1", "1")
    record = phone.doc.find("Record")

    def lost(*_args, **_kwargs):
        raise sa.exc.OperationalError("INSERT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(intake, "request_from_call", lost)
    sid = "RE" + "e" * 32
    phone.post(record.get("action"), RecordingSid=sid, RecordingDuration="6", Digits="9",
               RecordingUrl="https://api.twilio.com/x/" + sid)
    assert phone.verbs() == ["Say", "Dial"] and phone.doc.find("Dial/Number").text == "988"
    with closed_app.app_context():
        assert [s.call_sid for s in db.session.scalars(sa.select(SafetyEvent))] == [phone.call_sid]


def test_recording_status_may_arrive_before_the_record_action(closed_app):
    phone = to_capture(closed_app)
    phone.press_through("1", "1", "1", "1")
    record = phone.doc.find("Record")
    sid = "RE" + "b" * 32
    url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/" + sid
    twilio_post(phone.client, record.get("recordingStatusCallback"), {
        "CallSid": phone.call_sid, "RecordingSid": sid, "RecordingUrl": url, "RecordingDuration": "9",
        "RecordingStatus": "completed"})
    phone.post(record.get("action"), RecordingSid=sid, RecordingUrl=url, RecordingDuration="9", Digits="#")
    with closed_app.app_context():
        assert db.session.scalar(sa.select(Recording.status)) == "completed"
        assert db.session.scalar(sa.select(CallbackRequest.recording_sid)) == sid


def test_silence_instead_of_a_message_still_stores_the_request(closed_app):
    phone = to_capture(closed_app)
    phone.press_through("1", "1", "1", "1")
    phone.silence()  # Twilio skips the action on an empty recording and follows the Redirect
    # Stored now, as after any last question; no Digits come with that Redirect, so the crisis
    # key is offered once more before the read-back that follows (no key: Twilio goes on to it).
    [request] = stored_requests(closed_app)
    assert request.recording_sid is None and request.requested_by_caller and request.reason == "general"
    assert phone.verbs() == ["Gather", "Say", "Say", "Say", "Hangup"]
    offer = phone.gather()
    assert (offer.get("numDigits"), offer.get("timeout")) == ("1", "5")
    spoken = phone.spoken()
    assert spoken[0] == ("We didn't hear a message, and that's all right. If you are in crisis, press 9 now. "
                         "Otherwise, please hold.")
    assert spoken[1].startswith("Thank you. We expect to call you back")
    phone.hang_up()
    [request] = stored_requests(closed_app)  # a caller who hangs up during the offer has still asked
    assert not request.missed and request.requested_by_caller


@pytest.mark.parametrize("lang_key, tag, offer, connecting", [
    ("1", "en-US", "If you are in crisis, press 9 now.", "Connecting you now to the 9 8 8 Suicide"),
    ("2", "es-US", "Si está en crisis, oprima 9 ahora.", "Le estamos comunicando con la Línea 9 8 8"),
])
def test_the_crisis_key_pressed_at_the_tone_still_reaches_the_crisis_line(closed_app, lang_key, tag, offer,
                                                                          connecting):
    """Pressed before a word is said, the key ends an empty recording: Twilio then posts no
    Record action (so no Digits) and follows the Redirect. The line asks once more."""
    phone = to_capture(closed_app, lang_key=lang_key)
    phone.press_through("1", "1", "1", "1")
    phone.silence()
    assert offer in phone.spoken()[0] and phone.languages() == {tag}
    phone.press("9")
    assert phone.doc.find("Dial/Number").text == "988"
    assert phone.spoken()[0].startswith(connecting)
    with closed_app.app_context():
        safety = db.session.scalars(sa.select(SafetyEvent)).all()
        assert [(s.call_sid, s.dialed) for s in safety] == [(phone.call_sid, "988")]
    # The request was stored before the offer: a coordinator still calls back, and the queue
    # shows that this caller used the crisis line.
    [request] = stored_requests(closed_app)
    assert request.requested_by_caller


def test_another_key_after_an_empty_recording_goes_on_to_the_confirmation(closed_app):
    phone = to_capture(closed_app)
    phone.press_through("1", "1", "1", "1")
    phone.silence()
    phone.press("#")
    assert phone.spoken()[0].startswith("Thank you. We expect to call you back")
    assert phone.verbs()[-1] == "Hangup"
    [request] = stored_requests(closed_app)  # the same request, found again
    assert request.recording_sid is None


def test_caller_who_hangs_up_while_recording_still_gets_a_request(closed_app):
    phone = to_capture(closed_app)
    phone.press_through("1", "1", "1", "1")
    record = phone.doc.find("Record")
    phone.post(record.get("action"), RecordingSid="RE" + "c" * 32, RecordingDuration="30", Digits="hangup",
               RecordingUrl="https://api.twilio.com/x/RE" + "c" * 32)
    phone.hang_up()
    [request] = stored_requests(closed_app)
    assert request.recording_sid == "RE" + "c" * 32 and request.requested_by_caller and not request.missed
