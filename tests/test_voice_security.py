"""Every /voice/ route checks X-Twilio-Signature: missing or wrong gets 403 and stores nothing."""

import re
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from tests.phone import BASE, Phone, new_sid, parse, sign, twilio_post
from voiceline.extensions import db
from voiceline.models import Call, CallbackRequest, CallEvent, SafetyEvent


def _fields(call_sid):
    return {"CallSid": call_sid, "From": "+16175550123", "To": "+18885550100", "CallStatus": "ringing"}


def _stored(app):
    with app.app_context():
        return (db.session.scalar(sa.select(sa.func.count()).select_from(Call)),
                db.session.scalar(sa.select(sa.func.count()).select_from(CallEvent)))


def _greeted(app, response, call_sid: str) -> None:
    """What an accepted /voice/incoming produces: the greeting, a <Gather> on to the welcome
    step (the error handler's fallback after the signature check is a <Dial> to patient
    services, or a <Gather> to /voice/crisis when closed), and the call's own row."""
    doc = parse(response)
    gather = doc.find("Gather")
    assert gather is not None and urlsplit(gather.get("action")).path == "/voice/step/welcome", (
        ET.tostring(doc, encoding="unicode"))
    with app.app_context():
        assert db.session.scalars(sa.select(Call.call_sid).where(Call.call_sid == call_sid)).all() == [call_sid]


def test_every_voice_route_refuses_unsigned_requests(app, client):
    """Like GOV.UK Notify's test_all_routes_have_authentication: a new route can't ship unguarded."""
    rules = [r for r in app.url_map.iter_rules() if r.rule.startswith("/voice/")]
    assert len(rules) >= 10
    for rule in rules:
        path = rule.rule.replace("<path:node>", "main_menu")
        response = client.post(path, data=_fields(new_sid()))
        assert response.status_code == 403, rule.rule
    assert _stored(app) == (0, 0)


@pytest.mark.parametrize("signature", ["", "not-a-signature", sign(BASE + "/voice/incoming", {}, "other-token")])
def test_bad_signature_is_403_and_stores_nothing(app, client, signature):
    response = twilio_post(client, "/voice/incoming", _fields(new_sid()), signature=signature)
    assert response.status_code == 403
    assert _stored(app) == (0, 0)


def test_signature_from_another_auth_token_is_refused(app, client):
    response = twilio_post(client, "/voice/incoming", _fields(new_sid()), token="someone-elses-token")
    assert response.status_code == 403
    assert _stored(app) == (0, 0)


def test_tampered_parameters_are_refused(app, client):
    data = _fields(new_sid())
    signature = sign(BASE + "/voice/incoming", data)
    response = twilio_post(client, "/voice/incoming", {**data, "From": "+12125550147"}, signature=signature)
    assert response.status_code == 403 and b"<Response" not in response.data
    assert _stored(app) == (0, 0)
    # The same request untampered is served and stored: the 403 was the tampering's.
    _greeted(app, twilio_post(client, "/voice/incoming", data, signature=signature), data["CallSid"])
    assert _stored(app) == (1, 0)


def test_an_added_parameter_breaks_the_signature(app, client):
    data = _fields(new_sid())
    signature = sign(BASE + "/voice/incoming", data)
    response = twilio_post(client, "/voice/incoming", {**data, "Digits": "9"}, signature=signature)
    assert response.status_code == 403 and b"<Response" not in response.data
    assert _stored(app) == (0, 0)


def test_a_tampered_step_stores_no_step(app, client, phone):
    """Mid-call: a signed step with the digit changed (the crisis key put in) is refused and
    leaves the call as it was, no step and no crisis-line event."""
    phone.call()
    url = phone.action()
    data = phone.fields(Digits="1")
    response = twilio_post(client, url, {**data, "Digits": "9"}, signature=sign(url, data))
    assert response.status_code == 403 and b"<Response" not in response.data
    assert _stored(app) == (1, 0)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(SafetyEvent)) == 0
    kept = parse(twilio_post(client, url, data, signature=sign(url, data)))  # as signed: served and kept
    assert urlsplit(kept.find("Gather").get("action")).path == "/voice/step/main_menu"  # English chosen
    assert _stored(app) == (1, 1)


def test_validation_covers_every_parameter_received(app, client):
    """Twilio adds parameters without notice: a signature over all of them is accepted."""
    data = {**_fields(new_sid()), "CallerCountry": "US", "StirVerstat": "TN-Validation-Passed-A", "NewField": "x"}
    _greeted(app, twilio_post(client, "/voice/incoming", data), data["CallSid"])


def test_signature_with_explicit_default_port_is_accepted(app, client):
    data = _fields(new_sid())
    response = twilio_post(client, "/voice/incoming", data, signature=sign("http://localhost:80/voice/incoming", data))
    _greeted(app, response, data["CallSid"])


def test_query_string_is_checked_exactly_as_requested(app, phone):
    """An action URL with percent-encoded characters (%2F) must validate as Twilio sent it."""
    phone.call()
    url = BASE + "/voice/step/main_menu?lang=en&step=1&reason=a%2Fb"
    doc = phone.post(url, Digits="6")
    assert doc.find("Gather") is not None


def test_public_base_url_is_what_gets_signed(make_app):
    app = make_app(PUBLIC_BASE_URL="https://voice.example.org")
    client = app.test_client()
    data = _fields(new_sid())
    # Behind a TLS-terminating proxy Flask sees http://localhost; Twilio signed the https URL.
    good = sign("https://voice.example.org/voice/incoming", data)
    _greeted(app, client.post("/voice/incoming", data=data, headers={"X-Twilio-Signature": good}), data["CallSid"])
    other = {**data, "CallSid": new_sid()}  # another call, so that storing it would show
    bad = sign("http://localhost/voice/incoming", other)
    assert client.post("/voice/incoming", data=other, headers={"X-Twilio-Signature": bad}).status_code == 403
    assert _stored(app) == (1, 0)


def test_action_urls_use_public_base_url(make_app):
    app = make_app(PUBLIC_BASE_URL="https://voice.example.org")
    phone = Phone(app)
    doc = parse(twilio_post(phone.client, "https://voice.example.org/voice/incoming", phone.fields()))
    assert doc.find("Gather").get("action").startswith("https://voice.example.org/voice/step/welcome?")


def test_get_requests_are_not_served(app, client):
    """Twilio POSTs to us; an unsigned GET is refused like any unsigned request (403, as the
    voice part of the site answers an unmatched method), never told which methods exist (405)."""
    for path in ("/voice/incoming", "/voice/step/main_menu", "/voice/status"):
        response = client.get(path, query_string={"CallSid": new_sid(), "From": "+16175550123"})
        assert response.status_code == 403, path
        assert b"<Response" not in response.data and "Allow" not in response.headers
    assert _stored(app) == (0, 0)


def test_development_still_validates_with_a_generated_token(make_app):
    app = make_app(VOICELINE_ENV="development", TWILIO_AUTH_TOKEN="")
    client = app.test_client()
    assert twilio_post(client, "/voice/incoming", _fields(new_sid())).status_code == 403
    assert _stored(app) == (0, 0)
    token = app.config["TWILIO_AUTH_TOKEN"]
    data = _fields(new_sid())
    assert token
    _greeted(app, twilio_post(client, "/voice/incoming", data, token=token), data["CallSid"])


def test_healthz_needs_no_signature_and_reports_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["database"] == "ok"


def test_no_callback_from_forged_request(app, client):
    forged = {**_fields(new_sid()), "Digits": "2"}
    response = client.post("/voice/step/callback?lang=en&step=9&phase=message", data=forged,
                           headers={"X-Twilio-Signature": "forged"})
    assert response.status_code == 403
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CallbackRequest)) == 0


def test_voice_responses_never_set_a_cookie(app):
    """Webhooks get no cookie session, even from a client that holds a staff session cookie."""
    from tests.staff import StaffClient, add_staff

    add_staff(app, "ana@clinic.example", "Ana Ortiz")
    staff = StaffClient(app).signed_in_as("ana@clinic.example")
    for path in ("/voice/incoming", "/voice/nope"):
        response = twilio_post(staff.client, "https://localhost" + path, _fields(new_sid()))
        parse(response)
        assert "Set-Cookie" not in response.headers, path
        assert "Cookie" not in response.headers.get("Vary", ""), path


@pytest.mark.parametrize("signature", ["sïgnature-with-ünicode", "a" * 400, "not base64 !", ""])
def test_a_malformed_signature_is_403_before_the_body_is_read(app, client, signature, caplog):
    response = client.post("/voice/incoming", data=_fields(new_sid()), headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403
    assert not any(r.levelname == "ERROR" for r in caplog.records)  # refused, not a crash
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Call)) == 0


def test_a_body_far_bigger_than_twilio_sends_is_refused_unparsed(app, client):
    fields = {**_fields(new_sid()), **{f"f{i}": "x" for i in range(8000)}}  # about 60 kB
    response = client.post("/voice/incoming", data=fields, headers={"X-Twilio-Signature": "A" * 27 + "="})
    assert response.status_code == 413
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Call)) == 0


def test_an_unknown_voice_url_with_a_body_no_webhook_sends_is_refused_not_a_500(app, client):
    fields = {**_fields(new_sid()), **{f"f{i}": "x" for i in range(8000)}}
    response = client.post("/voice/no-such-route", data=fields, headers={"X-Twilio-Signature": "A" * 27 + "="})
    assert response.status_code == 413


def test_a_signature_check_that_breaks_is_refused_never_answered_with_twiml(app, client, monkeypatch, caplog):
    """Whatever goes wrong inside the check, an unverified request gets no TwiML (which would
    show the patient-services number) and stores nothing."""
    from voiceline.voice import security

    def broken():
        raise RuntimeError("something unexpected")

    monkeypatch.setattr(security, "requested_url", broken)
    response = client.post("/voice/incoming", data=_fields(new_sid()), headers={"X-Twilio-Signature": "A" * 27 + "="})
    assert response.status_code == 403 and b"<Response" not in response.data
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Call)) == 0


def _rejections(caplog) -> list[str]:
    """Each rejection's message, without the ids the masking filter may have appended already."""
    return [re.sub(r" \[path=[^\]]*\]$", "", r.getMessage()) for r in caplog.records
            if r.name == "voiceline.voice.security"]


def test_an_unsigned_request_is_logged_as_such(app, client, caplog):
    assert client.post("/voice/incoming", data=_fields(new_sid())).status_code == 403
    assert _rejections(caplog) == ["rejected unsigned or forged webhook"]


@pytest.mark.parametrize(("public_base_url", "checked"), [(None, "http://localhost"),
                                                          ("https://voice.example.org", "https://voice.example.org")])
def test_a_signature_that_does_not_match_names_the_origin_checked(make_app, caplog, public_base_url, checked):
    """Signed by Twilio for the https URL it called, checked against another origin: the line
    says which, and what to set (and never the query string or a form value)."""
    app = make_app(PUBLIC_BASE_URL=public_base_url)
    data = _fields(new_sid())
    signed_for = "https://line.example.net/voice/step/main_menu?lang=en&n=2"
    response = twilio_post(app.test_client(), BASE + "/voice/step/main_menu?lang=en&n=2", data,
                           signature=sign(signed_for, data))
    assert response.status_code == 403
    [line] = _rejections(caplog)
    assert line == (f"rejected unsigned or forged webhook: the signature does not match this URL at origin "
                    f"{checked} (if Twilio calls another origin, as when TLS ends at a proxy, set "
                    "PUBLIC_BASE_URL to it)")
    assert "lang=en" not in line and "6175550123" not in line
