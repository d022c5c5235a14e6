"""The greeting, language choice, menus, prescreen and insurance questions, in both languages."""

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from tests.phone import parse, query, twilio_post
from voiceline.extensions import db
from voiceline.models import Call, CallbackRequest, CallEvent

PRESS = {"en": "press", "es": "oprima"}
LANG_KEY = {"en": "1", "es": "2"}
TAG = {"en": "en-US", "es": "es-US"}


def events(app, call_sid):
    with app.app_context():
        return db.session.scalars(
            sa.select(CallEvent).where(CallEvent.call_sid == call_sid).order_by(CallEvent.step)).all()


def answers(app, call_sid):
    return {e.field: e.value for e in events(app, call_sid) if e.field}


def options_announced(phone, lang):
    """{key: text} for every "..., press N." line of the last response."""
    found = {}
    for text in phone.spoken():
        match = re.search(rf"{PRESS[lang]} (\d)\.$", text)
        if match:
            found[match.group(1)] = text
    return found


def test_greeting_safety_notice_first_then_language_choice(phone):
    phone.call()
    spoken = phone.spoken()
    assert "9 1 1" in spoken[0] and "9 8 8" in spoken[0] and "press 9" in spoken[0]
    assert "9 1 1" in spoken[1] and "oprima 9" in spoken[1]
    assert spoken[2] == "For English, press 1."
    assert spoken[3] == "Para español, oprima 2."
    gather = phone.gather()
    assert gather.get("numDigits") == "1" and gather.get("input") == "dtmf"
    assert [s.get("language") for s in gather.iter("Say")] == ["en-US", "es-US", "en-US", "es-US"]


@pytest.mark.parametrize("lang", ["en", "es"])
def test_language_choice_carries_through_every_prompt(app, phone, lang):
    phone.call()
    phone.press(LANG_KEY[lang])
    assert phone.languages() == {TAG[lang]}
    assert phone.gather().get("language") == TAG[lang]
    assert query(phone.action())["lang"] == lang
    phone.press("1")  # candidacy: the prescreen starts, still in the chosen language
    assert phone.languages() == {TAG[lang]}
    voices = {say.get("voice") for say in phone.doc.iter("Say")}
    assert voices == {"Polly.Joanna-Neural" if lang == "en" else "Polly.Lupe-Neural"}
    with app.app_context():  # each step's row carries the language; the call's at the end
        spoken = db.session.scalars(sa.select(CallEvent.language).where(CallEvent.call_sid == phone.call_sid)
                                    .order_by(CallEvent.step)).all()
        assert spoken == [lang, lang]  # the language choice, then the first menu press
    phone.hang_up()
    with app.app_context():
        assert db.session.scalar(sa.select(Call.language).where(Call.call_sid == phone.call_sid)) == lang


@pytest.mark.parametrize("lang", ["en", "es"])
def test_main_menu_announces_every_option_as_press_n(phone, lang):
    phone.call()
    phone.press(LANG_KEY[lang])
    assert sorted(options_announced(phone, lang)) == ["1", "2", "3", "4", "5", "6"]
    assert ("press 9" if lang == "en" else "oprima 9") in phone.spoken()[-1]  # crisis reminder


@pytest.mark.parametrize("lang", ["en", "es"])
def test_repeat_option_plays_the_main_menu_again(phone, lang):
    phone.call()
    phone.press(LANG_KEY[lang])
    first = phone.spoken()
    phone.press("6")
    assert phone.spoken() == first
    assert int(query(phone.action())["step"]) == 3  # a new step, not a retry of the old one


@pytest.mark.parametrize("lang", ["en", "es"])
def test_candidacy_prescreen_records_answers_and_promises_nothing(app, phone, lang):
    phone.call()
    phone.press(LANG_KEY[lang])
    phone.press("1")
    assert sorted(options_announced(phone, lang)) == ["1", "2"]
    for key in ["1", "2", "1", "1"]:
        phone.press(key)
    phone.press("2")  # no history of psychosis, blood pressure or pregnancy
    text = phone.text().lower()
    # The line never tells a caller whether they are a candidate.
    for phrase in ("you are a candidate", "you qualify", "not a candidate", "eligible",
                   "es candidato", "califica", "elegible"):
        assert phrase not in text
    assert phone.doc.find("Dial/Number").text == "+18885668774"
    assert answers(app, phone.call_sid) == {
        "age_18_or_older": "yes", "mood_disorder_diagnosis": "no", "tried_two_antidepressants": "yes",
        "under_care_now": "yes", "psychosis_blood_pressure_or_pregnancy": "no",
    }


@pytest.mark.parametrize("lang", ["en", "es"])
def test_insurance_plan_and_spoken_carrier(app, phone, lang):
    phone.call()
    phone.press(LANG_KEY[lang])
    phone.press("2")
    phone.press("1")  # insurance
    assert sorted(options_announced(phone, lang)) == ["1", "2", "3", "4", "5"]
    phone.press("2")  # Medicare
    gather = phone.gather()
    assert gather.get("input") == "dtmf speech"
    assert gather.get("language") == TAG[lang]
    assert gather.get("speechModel") == "phone_call"
    assert gather.get("speechTimeout") == "2"  # "auto" is refused with a speechModel (Twilio warning 13335)
    assert "Aetna" in gather.get("hints")
    phone.say("Blue Cross Blue Shield")
    text = phone.text()
    if lang == "en":
        assert "Insurance usually does not pay for I V ketamine" in text and "many of them must approve it first" in text
        assert "We can't tell you today what your plan will pay." in text and "check your coverage" in text
    else:
        assert "el seguro no paga la ketamina intravenosa" in text and "muchos tienen que aprobarlo antes" in text
        assert "Hoy no podemos decirle cuánto pagará su plan." in text and "revisará su cobertura" in text
    assert phone.doc.find("Dial") is not None
    assert answers(app, phone.call_sid) == {"coverage": "insurance", "plan_type": "medicare",
                                            "carrier": "Blue Cross Blue Shield"}


def test_carrier_question_can_be_skipped_by_key_or_silence(app, phone):
    phone.call()
    phone.press_through("1", "2", "1", "5")
    phone.press("1")  # skip
    assert phone.doc.find("Dial") is not None
    other = type(phone)(app)
    other.call()
    other.press_through("1", "2", "1", "1")
    other.silence()
    assert other.doc.find("Dial") is not None
    assert "carrier" not in answers(app, other.call_sid)


def test_self_pay_hears_cost_information(app, phone):
    phone.call()
    phone.press_through("1", "2")
    phone.press("2")
    assert "Insurance usually does not pay for I V ketamine" in phone.text()
    assert answers(app, phone.call_sid) == {"coverage": "self_pay"}


def test_spoken_carrier_is_stored_as_plain_text_and_cut_short(app, phone):
    phone.call()
    phone.press_through("1", "2", "1", "1")
    phone.say("<script>alert(1)</script> Aetna\x00\x07 " + "x" * 500)
    carrier = answers(app, phone.call_sid)["carrier"]
    assert len(carrier) == 200 and "\x00" not in carrier and carrier.startswith("<script>alert(1)</script> Aetna")


@pytest.mark.parametrize("lang", ["en", "es"])
def test_what_to_expect_facts_and_menu(phone, lang):
    phone.call()
    phone.press(LANG_KEY[lang])
    phone.press("3")
    text = phone.text()
    if lang == "en":
        for fact in ("45 minutes", "watches over you", "drive you home", "alcohol", "sedatives",
                     "esketamine", "not FDA-approved for depression"):
            assert fact in text
    else:
        for fact in ("45 minutos", "le cuida", "llevarle a casa", "alcohol", "tranquilizantes",
                     "esketamina", "no está aprobada por la FDA para la depresión"):
            assert fact in text
    assert sorted(options_announced(phone, lang)) == ["1", "2", "3"]
    phone.press("3")
    assert sorted(options_announced(phone, lang)) == ["1", "2", "3", "4", "5", "6"]


def test_no_input_reprompts_briefly_then_goes_to_patient_services_when_open(app, phone):
    phone.call()
    phone.press("1")
    phone.silence()
    assert phone.spoken()[0] == "Sorry, I didn't hear a choice."
    assert "How can we help" not in phone.text()  # a short reprompt: the options, not the intro
    assert query(phone.action())["tries"] == "1"
    phone.press("7")
    assert phone.spoken()[0] == "Sorry, that's not one of the choices."
    assert query(phone.action())["tries"] == "2"
    phone.silence()
    assert phone.doc.find("Dial/Number").text == "+18885668774"
    assert "Let me get you to someone who can help." in phone.spoken()


def _three_wrong_keys_while_closed(make_app, lang_key: str):
    """A caller who chose a language, then pressed a key the main menu does not have three
    times, on a Saturday with patient services open on weekdays only."""
    from tests.phone import Phone

    phone = Phone(make_app(BUSINESS_HOURS="Mon-Fri 08:00-18:00", HOLIDAYS="none"))
    phone.app.extensions["voiceline.clock"] = lambda: dt.datetime(2026, 11, 28, 15, 0, tzinfo=dt.UTC)
    phone.call()
    phone.press(lang_key)
    for _ in range(3):
        phone.press("8")
    return phone


def test_three_failures_when_closed_lead_to_callback_capture(make_app):
    phone = _three_wrong_keys_while_closed(make_app, "1")
    text = phone.text()
    assert "closed right now" in text and "Monday through Friday, 8 AM to 6 PM, Eastern time" in text
    assert "ending in 0 1 2 3" in text
    assert phone.doc.find("Dial") is None
    # Not "let me get you to someone" right before "closed right now".
    assert "Let me help you another way." in phone.spoken() and "someone who can help" not in text


def test_three_failures_when_closed_in_spanish_say_so_in_spanish(make_app):
    phone = _three_wrong_keys_while_closed(make_app, "2")
    assert "Permítame ayudarle de otra manera." in phone.spoken()
    assert phone.languages() == {"es-US"}


def test_silence_at_the_greeting_escalates_in_both_languages(phone):
    phone.call()
    for _ in range(3):
        phone.silence()
    assert phone.doc.find("Dial/Number").text == "+18885668774"
    spoken = phone.spoken()
    assert "Let me get you to someone who can help." in spoken
    assert "Le comunico con alguien que pueda ayudarle." in spoken


@pytest.mark.parametrize("path,node", [
    ([], "welcome"), (["1"], "main_menu"), (["1", "1"], "prescreen_age"), (["1", "2"], "insurance_coverage"),
    (["1", "2", "1"], "insurance_plan"), (["1", "2", "1", "1"], "insurance_carrier"),
    (["1", "3"], "what_to_expect_menu"), (["2", "1", "1", "1"], "prescreen_medications"),
])
def test_crisis_key_works_at_every_menu(app, phone, path, node):
    phone.call()
    phone.press_through(*path)
    assert f"/voice/step/{node}?" in phone.action()
    phone.press("9")
    assert phone.doc.find("Dial/Number").text == "988"
    assert "9 8 8" in phone.text()
    phone.hang_up()
    from voiceline.models import SafetyEvent

    with app.app_context():
        safety = db.session.scalars(sa.select(SafetyEvent)).all()
        assert [(s.call_sid, s.node, s.dialed) for s in safety] == [(phone.call_sid, node, "988")]
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CallbackRequest)) == 0
        assert db.session.scalar(sa.select(Call.outcome).where(Call.call_sid == phone.call_sid)) == "crisis_line"


def test_crisis_is_spoken_in_the_callers_language(phone):
    phone.call()
    phone.press_through("2", "1")
    phone.press("9")
    assert phone.languages() == {"es-US"}
    assert "Línea 9 8 8" in phone.text()
    # The Lifeline answers with its own menu, in English first: a Spanish caller is told its key.
    assert "oprima 2 para hablar en español" in phone.text()
    phone.dial_result("completed")
    assert "llame al 9 8 8 y oprima 2, o envíe la palabra AYUDA por mensaje de texto al 9 8 8" in phone.text()


def test_crisis_before_a_language_is_chosen_is_spoken_in_both(phone):
    # A Spanish speaker in crisis may press 9 during the greeting, before pressing 2.
    phone.call()
    phone.press("9")
    assert phone.verbs() == ["Say", "Say", "Dial"]
    assert phone.languages() == {"en-US", "es-US"}
    assert "lang=" not in phone.doc.find("Dial").get("action")
    phone.dial_result("failed")
    phone.dial_result("failed")
    # Neither crisis number answered and patient services is open: a coordinator, in both.
    assert phone.verbs() == ["Say", "Say", "Dial"]
    assert phone.languages() == {"en-US", "es-US"}
    assert "No pudimos comunicarnos con la Línea de crisis" in phone.text()
    whisper = query(phone.doc.find("Dial/Number").get("url"))
    assert whisper["reason"] == "crisis" and "lang" not in whisper
    phone.dial_result("completed")  # the coordinator did not take it (no DialBridged)
    assert phone.verbs() == ["Say", "Say", "Hangup"]
    assert phone.languages() == {"en-US", "es-US"}
    assert "marque 9 8 8 y oprima 2" in phone.text()


def test_crisis_line_number_is_a_setting(make_app):
    from tests.phone import Phone

    phone = Phone(make_app(CRISIS_LINE_NUMBER="+18002738255"))
    phone.call()
    phone.press("9")
    assert phone.doc.find("Dial/Number").text == "+18002738255"


def test_crisis_dial_outcomes(app, phone):
    phone.call()
    phone.press_through("1")
    phone.press("9")
    phone.dial_result("completed")
    assert phone.verbs() == ["Say", "Hangup"]
    assert "call or text 9 8 8" in phone.text()

    second = type(phone)(app)
    second.call()
    second.press_through("1")
    second.press("9")
    second.dial_result("failed")  # some routes cannot dial 988: try the 800 number once
    assert second.doc.find("Dial/Number").text == "+18002738255"
    second.dial_result("failed")
    # Open: rather than a number to dial, a coordinator, told why by the whisper.
    assert second.verbs() == ["Say", "Dial"]
    assert second.spoken() == ["We could not reach the crisis line. Please stay on the line while I connect you with "
                               "our patient services team. If you are in danger, hang up and dial 9 1 1."]
    dial = second.doc.find("Dial")
    assert dial.find("Number").text == app.config["PATIENT_SERVICES_NUMBER"]
    assert query(dial.get("action"))["attempt"] == "3"
    whisper = second.accept_whisper()  # the coordinator hears why, and presses 1
    assert list(whisper) == []
    second.dial_result("completed", DialBridged="true")
    assert second.verbs() == ["Say", "Hangup"]
    assert "call or text 9 8 8" in second.text()

    third = type(phone)(app)
    third.call()
    third.press_through("1")
    third.press("9")
    third.dial_result("failed")
    third.dial_result("no-answer")
    third.dial_result("no-answer")  # patient services did not answer either
    assert third.verbs() == ["Say", "Hangup"]
    assert "dial 9 8 8 now" in third.text()
    from voiceline.models import SafetyEvent

    with app.app_context():
        statuses = dict(db.session.execute(sa.select(SafetyEvent.call_sid, SafetyEvent.dial_status)).all())
    # The safety event keeps the crisis line's own result, not patient services'.
    assert statuses == {phone.call_sid: "completed", second.call_sid: "failed", third.call_sid: "no-answer"}


def test_the_whisper_tells_the_coordinator_the_crisis_line_did_not_answer(app, phone):
    phone.call()
    phone.press_through("2")  # Spanish
    phone.press("9")
    phone.dial_result("failed")
    phone.dial_result("failed")
    number = phone.doc.find("Dial/Number")
    whisper = parse(twilio_post(phone.client, number.get("url"), {
        "CallSid": "CA" + "f" * 32, "ParentCallSid": phone.call_sid, "CallStatus": "in-progress"}))
    said = whisper.find("Gather/Say").text
    assert "a caller in crisis. They pressed the crisis key and the crisis line did not answer" in said
    assert "Spanish" in said


def test_a_crisis_line_that_does_not_answer_while_closed_leaves_clear_instructions(closed_app):
    from tests.phone import Phone

    phone = Phone(closed_app)
    phone.call()
    phone.press_through("1")
    phone.press("9")
    phone.dial_result("failed")
    phone.dial_result("failed")
    assert phone.verbs() == ["Say", "Hangup"]
    assert phone.spoken() == ["We could not connect your call. Please hang up and dial 9 8 8 now. In an emergency, "
                              "dial 9 1 1. Goodbye."]


def test_unknown_node_in_url_goes_back_to_the_main_menu(phone):
    phone.call()
    phone.post("/voice/step/no_such_node?lang=es&step=4", Digits="1")
    assert "/voice/step/main_menu?" in phone.action()
    assert phone.languages() == {"es-US"}


@pytest.mark.parametrize("args", ["lang=xx&step=abc&tries=99&reason=%3Cscript%3E&phase=evil", "", "step=-3"])
def test_odd_action_url_state_still_gets_a_menu(phone, args):
    phone.call()
    phone.post("/voice/step/main_menu" + (f"?{args}" if args else ""), Digits="1")
    assert phone.doc.find("Gather") is not None
    assert phone.languages() == {"en-US"}


@pytest.mark.parametrize("digits", ["abc", "hangup", "1" * 40, "\u0661", ""])
def test_odd_digits_are_treated_as_a_wrong_key_or_silence(phone, digits):
    phone.call()
    phone.press("1")
    phone.press(digits)
    assert phone.spoken()[0] in ("Sorry, that's not one of the choices.", "Sorry, I didn't hear a choice.")
    assert query(phone.action())["tries"] == "1"


@pytest.mark.parametrize("node", ["%2F", "a%2Fb", "main_menu%2F..", "%E2%98%83"])
def test_any_node_name_in_the_url_still_routes_to_a_menu(phone, node):
    phone.call()
    phone.post(f"/voice/step/{node}?lang=es&step=3", Digits="1")
    if phone.doc.find("Redirect") is not None and phone.doc.find("Gather") is None:
        phone.silence()  # a URL the app does not serve at all: back to the main menu
    assert "/voice/step/main_menu?" in phone.action()
    assert phone.languages() == {"es-US"}


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("path", ["/voice/nope", "/voice/step/%2F", "/voice/step/"])
def test_a_voice_url_no_route_serves_redirects_to_the_menu_in_the_callers_language(phone, lang, path):
    phone.call()
    phone.post(f"{path}?lang={lang}&step=4", Digits="1")
    assert phone.verbs() == ["Redirect"]
    target = phone.doc.find("Redirect").text
    assert target.split("?")[0].endswith("/voice/step/main_menu") and query(target) == {"lang": lang}
    phone.silence()  # Twilio follows the redirect: the main menu, in the caller's language
    assert "/voice/step/main_menu?" in phone.action() and phone.languages() == {TAG[lang]}


def test_a_voice_url_no_route_serves_defaults_to_english(phone):
    phone.call()
    phone.post("/voice/nope", Digits="1")
    assert query(phone.doc.find("Redirect").text) == {"lang": "en"}


def test_an_unsigned_request_to_a_voice_url_no_route_serves_is_refused(app):
    from tests.phone import twilio_post

    before = len(events(app, "CA" + "1" * 32))
    response = twilio_post(app.test_client(), "/voice/nope", {"CallSid": "CA" + "1" * 32}, signature="forged")
    assert response.status_code == 403
    assert len(events(app, "CA" + "1" * 32)) == before == 0


@pytest.mark.parametrize("lang", ["en", "es"])
def test_zero_goes_to_patient_services_from_a_menu_or_question(app, phone, lang):
    """Callers press 0 for a person: not announced, understood at every menu and yes/no question."""
    phone.call()
    phone.press_through(LANG_KEY[lang], "1")  # new patient: the first prescreen question
    assert "0" not in options_announced(phone, lang)
    phone.press("0")
    dial = phone.doc.find("Dial")
    assert dial is not None and dial.find("Number").text == app.config["PATIENT_SERVICES_NUMBER"]
    assert phone.languages() == {TAG[lang]}
    assert not any(s.startswith(("Sorry", "Disculpe")) for s in phone.spoken())
    whisper = query(dial.find("Number").get("url"))
    assert (whisper["reason"], whisper["lang"]) == ("candidacy", lang)
    assert events(app, phone.call_sid)[-1].choice == "operator"


def test_zero_at_the_greeting_goes_to_patient_services_without_a_language(phone):
    phone.call()
    phone.press("0")
    assert phone.spoken()[:2] == ["Let me get you to someone who can help.",
                                  "Le comunico con alguien que pueda ayudarle."]
    whisper = query(phone.doc.find("Dial/Number").get("url"))
    assert "lang" not in whisper  # the coordinator hears that no language was chosen


def test_dial_bridged_false_is_believed_over_a_stored_acceptance(app, phone):
    """Twilio says the caller was not put through: the database's flag (from this call's
    whisper, or an earlier one) is asked only when Twilio does not say."""
    phone.call()
    phone.press_through("1", "5")
    phone.accept_whisper()
    phone.dial_result("completed", DialBridged="false")
    assert "all of our coordinators are helping other callers" in phone.text()


def test_zero_while_closed_gives_the_hours_and_takes_a_callback_request(closed_app):
    from tests.phone import Phone

    phone = Phone(closed_app)
    phone.call()
    phone.press_through("1", "2")  # insurance: will you use insurance?
    phone.press("0")
    assert phone.spoken()[0].startswith("Patient services is closed right now. Our hours are")
    assert query(phone.gather().get("action"))["phase"] == "caller_id"
    assert query(phone.gather().get("action"))["reason"] == "insurance"


@pytest.mark.parametrize("lang", ["en", "es"])
def test_zero_at_a_spoken_question_goes_to_patient_services(app, phone, lang):
    phone.call()
    phone.press_through(LANG_KEY[lang], "2", "1", "1")  # insurance; yes; a commercial plan: "which company?"
    assert "speech" in phone.gather().get("input")
    phone.press("0")
    dial = phone.doc.find("Dial")
    assert dial is not None and dial.find("Number").text == app.config["PATIENT_SERVICES_NUMBER"]
    assert phone.languages() == {TAG[lang]}
    assert not any(s.startswith(("Sorry", "Disculpe")) for s in phone.spoken())
    assert query(dial.find("Number").get("url"))["lang"] == lang
    assert events(app, phone.call_sid)[-1].choice == "operator"


def test_zero_is_a_wrong_key_where_the_line_takes_a_phone_number(closed_app):
    from tests.phone import Phone

    phone = Phone(closed_app, from_number="anonymous")
    phone.call()
    phone.press_through("1", "5", "0")  # patient services (closed) -> callback; "0" as a number
    assert phone.spoken()[0] == "Sorry, that doesn't look like a U.S. phone number."


@pytest.mark.parametrize("lang,says", [
    ("en", "If you are having a problem after a treatment that can't wait, hang up and dial 9 1 1, or go to "
           "the nearest emergency room."),
    ("es", "Si tiene un problema después de un tratamiento y no puede esperar, cuelgue y marque 9 1 1, o vaya a "
           "la sala de emergencias más cercana."),
])
def test_an_existing_patient_calling_while_closed_hears_what_to_do_if_it_cannot_wait(closed_app, lang, says):
    from tests.phone import Phone

    phone = Phone(closed_app)
    phone.call()
    phone.press_through(LANG_KEY[lang], "4")
    spoken = phone.spoken()
    assert spoken[0].startswith(("Patient services is closed right now.", "Atención al paciente está cerrada"))
    assert spoken[1] == says
    other = Phone(closed_app)
    other.call()
    other.press_through(LANG_KEY[lang], "5")  # anyone else: no such sentence
    assert says not in other.spoken()


NOT_TAKEN = {
    "en": ("I'm sorry, all of our coordinators are helping other callers right now.",
           "If you are having a problem after a treatment that can't wait, hang up and dial 9 1 1"),
    "es": ("Lo sentimos, todos nuestros coordinadores están atendiendo a otras personas en este momento.",
           "Si tiene un problema después de un tratamiento y no puede esperar, cuelgue y marque 9 1 1"),
}


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("status", ["busy", "no-answer", "completed"])
def test_an_existing_patient_nobody_answered_hears_what_to_do_if_it_cannot_wait(app, status, lang):
    from tests.phone import Phone

    busy, urgent = NOT_TAKEN[lang]
    phone = Phone(app)
    phone.call()
    phone.press_through(LANG_KEY[lang], "4")
    assert phone.doc.find("Dial") is not None  # open: rung through
    phone.dial_result(status)  # nobody took it ("completed" without DialBridged: a voicemail box)
    spoken = phone.spoken()
    assert spoken[0] == busy and spoken[1].startswith(urgent)
    assert phone.languages() == {TAG[lang]}
    other = Phone(app)
    other.call()
    other.press_through(LANG_KEY[lang], "5")  # anyone else: no such sentence
    other.dial_result(status)
    assert not any(s.startswith(urgent) for s in other.spoken())
