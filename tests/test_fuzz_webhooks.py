"""Hostile and random input on every /voice/ route: never a 5xx; unsigned or forged gets 403
and stores nothing; correctly signed but odd gets valid TwiML that keeps the caller going."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from urllib.parse import quote, urlencode

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.phone import BASE, check_invariants, sign
from voiceline.extensions import db
from voiceline.models import Call, CallbackRequest, CallEvent, Recording, SafetyEvent

DEEP = os.environ.get("VOICELINE_DEEP_FUZZ") == "1"
EXAMPLES = 400 if DEEP else 60

ROUTES = ["/voice/incoming", "/voice/step/{node}", "/voice/dial-result", "/voice/whisper", "/voice/whisper-answer",
          "/voice/crisis", "/voice/crisis-result", "/voice/fallback-result", "/voice/recording-status", "/voice/status"]
NODES = ["welcome", "main_menu", "prescreen_age", "insurance_carrier", "callback", "patient_services", "nope"]
TWILIO_FIELDS = ["CallSid", "AccountSid", "From", "To", "CallStatus", "Digits", "SpeechResult", "Confidence",
                 "DialCallStatus", "DialCallDuration", "RecordingSid", "RecordingUrl", "RecordingDuration",
                 "RecordingStatus", "CallDuration", "ParentCallSid", "CallerName", "FromCity", "ErrorCode"]
HOSTILE = ["' OR 1=1 --", "<script>alert(1)</script>", "\x00", "%00", "../../etc/passwd", "{clinic_name}",
           "{0}", "${jndi:ldap://x}", "\u202e", "🙂" * 50, "9" * 5000, "anonymous", "+266696687", "hangup",
           "CA" + "0" * 32, "RE" + "f" * 32, "https://evil.example/x.mp3", "-1", "1e309", "NaN", "completed"]

values = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=300), st.from_regex(r"[0-9*#]{0,12}", fullmatch=True))
forms = st.dictionaries(st.one_of(st.sampled_from(TWILIO_FIELDS), st.text(min_size=1, max_size=20)), values, max_size=12)
queries = st.dictionaries(
    st.sampled_from(["lang", "step", "tries", "reason", "phase", "node", "call", "attempt", "x"]), values, max_size=6)
paths = st.builds(
    lambda route, node: route.replace("{node}", quote(node, safe="")) if "{node}" in route else route,
    st.sampled_from(ROUTES), st.one_of(st.sampled_from(NODES), st.text(min_size=1, max_size=40)))

FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not DEEP,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _url(path: str, query: dict[str, str]) -> str:
    return BASE + path + (f"?{urlencode(query)}" if query else "")


def _post(client, url: str, form: dict[str, str], signature: str):
    path = url[len(BASE):]
    return client.post(path, data=form, headers={"X-Twilio-Signature": signature})


def _rows(app) -> tuple[int, ...]:
    with app.app_context():
        return tuple(db.session.scalar(sa.select(sa.func.count()).select_from(m))
                     for m in (Call, CallEvent, CallbackRequest, Recording, SafetyEvent))


@FUZZ
@given(path=paths, query=queries, form=forms)
def test_signed_odd_requests_get_valid_twiml(app, path, query, form):
    url = _url(path, query)
    response = _post(app.test_client(), url, form, sign(url, form))
    assert response.status_code == 200, (url, form, response.get_data(as_text=True)[:500])
    body = response.get_data(as_text=True)
    root = ET.fromstring(body)
    assert root.tag == "Response"
    check_invariants(root)


@FUZZ
@given(path=paths, query=queries, form=forms,
       signature=st.one_of(st.just(""), st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60)))
def test_forged_or_unsigned_requests_get_403_and_store_nothing(app, path, query, form, signature):
    url = _url(path, query)
    before = _rows(app)
    response = _post(app.test_client(), url, form, signature)
    assert response.status_code == 403
    assert _rows(app) == before


@FUZZ
@given(path=paths, query=queries, form=forms, extra=st.text(min_size=1, max_size=20))
def test_a_signature_for_other_parameters_is_refused(app, path, query, form, extra):
    url = _url(path, query)
    signature = sign(url, form)
    tampered = {**form, "Tampered": extra}
    before = _rows(app)
    assert _post(app.test_client(), url, tampered, signature).status_code == 403
    assert _rows(app) == before


@pytest.mark.parametrize("size", [40_000, 70_000, 300_000])  # over the webhooks' 32 kB; over the app's 256 kB
def test_huge_bodies_are_refused_with_413_and_store_nothing(app, size):
    """Correctly signed, but far bigger than any body Twilio sends: refused before it is
    parsed into a step, never a 5xx, never TwiML, nothing stored."""
    form = {"CallSid": "CA" + "1" * 32, "SpeechResult": "x" * size}
    url = BASE + "/voice/step/insurance_carrier?lang=en&step=5"
    before = _rows(app)
    response = _post(app.test_client(), url, form, sign(url, form))
    assert response.status_code == 413
    assert b"<Response" not in response.get_data()
    assert _rows(app) == before == (0, 0, 0, 0, 0)


def test_a_long_body_under_the_limit_is_still_answered(app):
    """The limit leaves room: a signed body of 30 kB (a very long speech result) gets TwiML."""
    form = {"CallSid": "CA" + "1" * 32, "SpeechResult": "Aetna " * 5_000}
    url = BASE + "/voice/step/insurance_carrier?lang=en&step=5"
    response = _post(app.test_client(), url, form, sign(url, form))
    assert response.status_code == 200
    root = ET.fromstring(response.get_data(as_text=True))
    assert root.tag == "Response" and list(root)
    check_invariants(root)
    assert _rows(app)[1] == 1  # the step was kept
