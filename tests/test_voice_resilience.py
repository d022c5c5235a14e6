"""No caller is stranded: database down, bugs, odd requests all get TwiML, never a 5xx.
And what we log never holds a phone number or an answer."""

import importlib.metadata
import logging
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from tests.phone import SATURDAY_EVENING, Phone, parse, twilio_post
from voiceline.extensions import db
from voiceline.models import CallbackRequest, SafetyEvent

UNREACHABLE = {
    "sqlite": "sqlite:////nonexistent-directory/for/sure/voiceline.db",
    "postgresql": "postgresql://postgres@127.0.0.1:9/voiceline",  # discard port: refused at once
}


def down_like(make_app, app):
    """An app with the same settings whose database, of the same backend, does not answer."""
    return make_app(DATABASE_URL=UNREACHABLE[sa.engine.make_url(app.config["SQLALCHEMY_DATABASE_URI"]).get_backend_name()])


@pytest.fixture(params=sorted(UNREACHABLE))
def down_app(request, make_app):
    return make_app(DATABASE_URL=UNREACHABLE[request.param])


def closed(app):
    app.config["BUSINESS_HOURS"] = type(app.config["BUSINESS_HOURS"]).parse(
        "Mon-Fri 08:00-18:00", app.config["CLINIC_TIMEZONE"])
    app.extensions["voiceline.clock"] = lambda: SATURDAY_EVENING
    return app


def test_database_down_at_the_greeting_connects_to_patient_services(down_app, caplog):
    phone = Phone(down_app)
    phone.call()
    assert phone.verbs() == ["Gather", "Dial"]  # the crisis key is listened for, then the dial
    assert phone.languages() == {"en-US", "es-US"}  # no language chosen yet: both
    assert phone.spoken()[0].startswith("We're sorry, our phone system is having a problem.")
    # The greeting's safety notice is not skipped on the way to patient services.
    assert "dial 9 1 1" in phone.spoken()[0] and "press 9 now to reach the 9 8 8 Lifeline" in phone.spoken()[0]
    assert "marque 9 1 1" in phone.spoken()[1] and "oprima 9 ahora" in phone.spoken()[1]
    gather = phone.gather()
    assert (gather.get("numDigits"), gather.get("timeout")) == ("1", "2") and "/voice/crisis" in gather.get("action")
    dial = phone.doc.find("Dial")
    assert dial.find("Number").text == "+18885668774" and dial.find("Number").get("url") is None
    assert "/voice/fallback-result" in dial.get("action")
    assert any("answering with the fallback" in r.getMessage() for r in caplog.records)


def test_database_down_while_open_the_crisis_key_still_reaches_988(down_app):
    phone = Phone(down_app)
    phone.call()
    phone.press("9")
    assert phone.doc.find("Dial/Number").text == "988"


@pytest.mark.parametrize("key", ["1", "0", "*"])
def test_database_down_while_open_another_key_goes_on_to_patient_services(down_app, key):
    """A key pressed out of habit at the apology must not end the call: on to the dial."""
    phone = Phone(down_app)
    phone.call()
    phone.press(key)
    assert phone.verbs() == ["Dial"]
    dial = phone.doc.find("Dial")
    assert dial.find("Number").text == "+18885668774" and "/voice/fallback-result" in dial.get("action")


def test_database_down_when_closed_gives_hours_and_the_crisis_line(down_app):
    phone = Phone(closed(down_app))
    phone.call()
    assert phone.verbs() == ["Gather", "Say", "Say", "Hangup"]
    text = phone.text()
    assert "Our hours are Monday through Friday, 8 AM to 6 PM, Eastern time." in text
    assert "press 9 now" in text and "9 1 1" in text
    phone.press("9")
    assert phone.doc.find("Dial/Number").text == "988"


@pytest.mark.parametrize("key", ["1", "5", "*", "#", ""], ids=["1", "5", "star", "pound", "nothing"])
def test_a_wrong_key_at_the_database_down_message_says_goodbye(down_app, key):
    """Only the crisis key connects (to 988); any other key, or none, ends the call kindly."""
    phone = Phone(closed(down_app))
    phone.call()
    assert "/voice/crisis" in phone.action()
    phone.post(phone.action(), Digits=key)
    assert phone.verbs() == ["Say", "Say", "Hangup"]
    assert phone.spoken() == ["Thank you for calling. Take care. Goodbye.", "Gracias por llamar. Cuídese. Adiós."]
    assert phone.doc.find(".//Dial") is None and phone.doc.find(".//Gather") is None


def test_the_database_down_message_stores_a_crisis_event_only_for_the_crisis_key(app):
    """The same message served while the database answers again (another worker): a wrong key
    ends the call in the caller's language and stores no crisis-line event; 9 connects and does."""
    phone = Phone(closed(app))
    phone.post("/voice/crisis?lang=es", Digits="5")
    assert phone.verbs() == ["Say", "Hangup"] and phone.spoken() == ["Gracias por llamar. Cuídese. Adiós."]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(SafetyEvent)) == 0
    phone.post("/voice/crisis?lang=es", Digits="9")
    assert phone.doc.find("Dial/Number").text == "988"
    with app.app_context():
        assert db.session.scalars(sa.select(SafetyEvent.call_sid)).all() == [phone.call_sid]


def test_fallback_transfer_that_fails_ends_with_instructions(down_app):
    phone = Phone(down_app)
    phone.call()  # no language chosen yet: everything in both
    assert "lang=" not in phone.doc.find("Dial").get("action")
    phone.dial_result("no-answer")
    assert phone.verbs() == ["Say", "Say", "Hangup"]
    assert phone.languages() == {"en-US", "es-US"}
    assert "We couldn't reach patient services." in phone.text()
    phone.call()
    phone.dial_result("completed")
    assert phone.verbs() == ["Say", "Say", "Hangup"]


def test_database_lost_at_the_greeting_speaks_both_languages(app, make_app):
    phone = Phone(app)
    phone.call()
    phone.served_by(down_like(make_app, app))
    phone.press("2")  # the welcome step's URL says lang=en only as a default
    assert phone.languages() == {"en-US", "es-US"}
    assert phone.doc.find("Dial/Number").text == "+18885668774"


def test_database_lost_mid_call_keeps_the_callers_language(app, make_app):
    phone = Phone(app)
    phone.call()
    phone.press("2")  # Spanish, stored
    phone.served_by(down_like(make_app, app))
    phone.press("1")
    assert phone.languages() == {"es-US"}
    assert phone.doc.find("Dial/Number").text == "+18885668774"


def test_crisis_key_connects_even_when_the_step_cannot_be_stored(app, make_app):
    phone = Phone(app)
    phone.call()
    phone.press("1")
    phone.served_by(down_like(make_app, app))
    phone.press("9")
    assert phone.doc.find("Dial/Number").text == "988"
    assert "Suicide and Crisis Lifeline" in phone.text()


@pytest.mark.parametrize("route", ["/voice/status", "/voice/recording-status"])
def test_callbacks_from_twilio_get_200_when_the_database_is_down(down_app, route):
    response = twilio_post(down_app.test_client(), route, {
        "CallSid": "CA" + "1" * 32, "CallStatus": "completed", "RecordingSid": "RE" + "1" * 32,
        "RecordingStatus": "completed", "RecordingUrl": "https://api.twilio.com/x"})
    # Twilio only needs the 200: an empty <Response/>, never the caller's fallback (a <Dial>
    # to patient services, or words, played into a call that is over or still going).
    assert list(parse(response)) == []


def test_whisper_accept_connects_even_when_it_cannot_be_stored(down_app):
    response = twilio_post(down_app.test_client(), "/voice/whisper-answer?call=CA" + "1" * 32,
                           {"CallSid": "CA" + "2" * 32, "Digits": "1"})
    assert list(parse(response)) == []


def test_healthz_reports_an_unreachable_database(down_app):
    response = down_app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "degraded", "database": "unreachable",
                                   "version": importlib.metadata.version("voiceline"),
                                   "prompts_version": down_app.extensions["voiceline.flow"].prompts_version}


def test_a_bug_in_a_step_still_answers_twiml(app, monkeypatch):
    phone = Phone(app)
    phone.call()
    phone.press("2")

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(app.extensions["voiceline.engine"], "advance", broken)
    phone.press("1")
    assert phone.languages() == {"es-US"}
    assert phone.doc.find("Dial") is not None


def test_missing_call_sid_still_keeps_the_caller_going(app):
    client = app.test_client()
    doc = parse(twilio_post(client, "/voice/incoming", {"From": "+16175550123"}))
    assert doc.find("Gather") is not None
    doc = parse(twilio_post(client, doc.find("Gather").get("action"), {"Digits": "1"}))
    assert doc.find("Gather") is not None


def test_empty_signed_requests_get_twiml_on_every_route(app):
    client = app.test_client()
    rules = [r.rule.replace("<path:node>", "main_menu") for r in app.url_map.iter_rules() if r.rule.startswith("/voice/")]
    for path in rules:
        response = twilio_post(client, path, {})
        assert response.status_code == 200, path
        parse(response)


def test_callback_finish_without_a_stored_call_is_still_stored(app):
    """The greeting's write was lost: the final step creates the call record itself."""
    phone = Phone(closed(app))
    phone.post("/voice/step/callback?lang=en&step=20&phase=message", Digits="2")
    with app.app_context():
        request = db.session.scalar(sa.select(CallbackRequest))
    assert request.phone == "+16175550123" and request.call_sid == phone.call_sid
    assert "ending in 0 1 2 3" in phone.text()


def test_no_phone_number_or_answer_reaches_the_logs(make_app, caplog):
    app = closed(make_app(LOG_LEVEL="DEBUG"))
    caplog.set_level(logging.DEBUG)
    phone = Phone(app, from_number="+16175550123")
    phone.call()
    phone.press_through("1", "2", "1", "1")
    phone.say("Blue Cross Blue Shield")
    phone.press_through("2", "6175550177", "1", "1", "1", "2")
    phone.hang_up()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "callback requested" in logged
    assert f"call ended: completed, callback_requested [call_sid={phone.call_sid}]" in logged
    for secret in ("6175550123", "617-555-0123", "6175550177", "555-0177", "Blue Cross"):
        assert secret not in logged


def test_every_call_end_is_one_log_line_with_its_outcome(make_app, caplog):
    """For the operator: how each call ended, by CallSid, settled or not (no caller data)."""
    app = closed(make_app())
    caplog.set_level(logging.INFO, logger="voiceline")
    missed = Phone(app, from_number="+16175550123")
    missed.call()
    missed.press("1")  # reached the main menu, then hung up
    missed.hang_up()
    crisis = Phone(app, from_number="+16175550124")
    crisis.call()
    crisis.press_through("1", "9")
    crisis.hang_up()
    ended = [r.getMessage() for r in caplog.records if r.getMessage().startswith("call ended")]
    assert ended == [f"call ended: completed, missed [call_sid={missed.call_sid}]",
                     f"call ended: completed, crisis_line [call_sid={crisis.call_sid}]"]


@contextmanager
def inserts_fail(engine, table):
    """Every INSERT into `table` fails inside the database (a trigger), whatever path runs it."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql(f"CREATE TRIGGER broken BEFORE INSERT ON {table} "
                                 "BEGIN SELECT RAISE(ABORT, 'broken for the test'); END")
        else:
            conn.exec_driver_sql("CREATE FUNCTION broken() RETURNS trigger LANGUAGE plpgsql AS "
                                 "$$ BEGIN RAISE EXCEPTION 'broken for the test'; END $$")
            conn.exec_driver_sql(f"CREATE TRIGGER broken BEFORE INSERT ON {table} "
                                 "FOR EACH ROW EXECUTE FUNCTION broken()")
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER broken" if engine.dialect.name == "sqlite"
                                 else f"DROP TRIGGER broken ON {table}")
            if engine.dialect.name != "sqlite":
                conn.exec_driver_sql("DROP FUNCTION broken()")


def test_a_database_error_logs_no_answer_from_its_statement(app, caplog):
    """A SQL error's message carries its statement's values; the webhook's write hides them."""
    phone = Phone(closed(app))
    phone.call()
    phone.press_through("1", "2", "1", "1")  # English, insurance, insured, commercial plan
    with app.app_context():
        engine = db.engine
    caplog.set_level(logging.WARNING)
    with inserts_fail(engine, "call_events"):
        phone.say("Blue Cross Blue Shield")
    assert phone.text()  # the fallback still speaks to the caller
    assert "voice webhook failed" in caplog.text and "parameters hidden" in caplog.text
    assert "broken for the test" in caplog.text  # it was the database's error that was logged
    assert "Blue Cross" not in caplog.text and "6175550123" not in caplog.text


# ---- the circuit breaker: one wait per outage, not one per webhook -----------------------------------
def _count_connects(app):
    from sqlalchemy import event

    attempts = []
    with app.app_context():
        event.listen(db.engine, "do_connect", lambda *args: attempts.append(1))
    return attempts


def test_after_one_failure_webhooks_skip_the_database_for_a_while(down_app):
    attempts = _count_connects(down_app)
    phone = Phone(down_app)
    phone.call()
    first = len(attempts)
    assert first >= 1 and down_app.extensions["voiceline.breaker"].is_open
    for _ in range(3):
        phone.call()
        assert phone.doc.find("Dial/Number").text == "+18885668774"
    assert len(attempts) == first  # answered at once, without trying again


def test_crisis_key_connects_at_once_while_the_breaker_is_open(app, make_app):
    phone = Phone(app)
    phone.call()
    phone.press("1")
    phone.served_by(down_like(make_app, app))
    phone.app.extensions["voiceline.breaker"].observe(
        sa.exc.OperationalError(None, None, Exception("connection refused")))
    attempts = _count_connects(phone.app)
    phone.press("9")
    assert phone.doc.find("Dial/Number").text == "988"
    assert attempts == []


def test_the_breaker_closes_again_and_the_line_recovers(app):
    from voiceline.voice.breaker import Breaker

    now = [1000.0]
    breaker = app.extensions["voiceline.breaker"] = Breaker(cooldown=10, clock=lambda: now[0])
    breaker.observe(sa.exc.OperationalError(None, None, Exception("connection refused")))
    phone = Phone(app)
    phone.call()
    assert phone.verbs() == ["Gather", "Dial"]  # fallback while open
    now[0] += 11
    phone.call()
    assert phone.doc.find("Gather") is not None  # the database is tried again, and works
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CallbackRequest)) == 0
        from voiceline.models import Call

        assert db.session.scalar(sa.select(Call.call_sid)) == phone.call_sid


@pytest.mark.parametrize("error,outage", [
    (sa.exc.OperationalError(None, None, Exception("could not connect")), True),  # never connected
    (sa.exc.OperationalError("INSERT ...", {}, Exception("database is locked")), False),  # a busy statement
    (sa.exc.IntegrityError("INSERT ...", {}, Exception("duplicate")), False),
    (sa.exc.TimeoutError("QueuePool limit"), True),
    (sa.exc.DisconnectionError("ping failed"), True),
    (RuntimeError("a bug"), False),
])
def test_only_failures_to_reach_the_database_open_the_breaker(error, outage):
    from voiceline.voice.breaker import Breaker

    breaker = Breaker()
    breaker.observe(error)
    assert breaker.is_open is outage
