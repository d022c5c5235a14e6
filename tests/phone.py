"""A test phone: signed Twilio requests, TwiML parsed with ElementTree.

    phone.call()            -> the greeting
    phone.press("1")        -> posts Digits to the last <Gather>'s action
    phone.silence()         -> follows the <Redirect> after the <Gather> (Twilio on timeout)
    phone.say("Aetna")      -> posts SpeechResult to the last <Gather>'s action
    phone.spoken()          -> every <Say> text of the last response
"""

from __future__ import annotations

import datetime as dt
import uuid
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

from twilio.request_validator import RequestValidator

TEST_TOKEN = "0123456789abcdef0123456789abcdef"  # shaped like a Twilio auth token (32 lowercase hex)
# 18:00 in New York on a Saturday: patient services closed on every schedule the tests use.
SATURDAY_EVENING = dt.datetime(2026, 11, 28, 23, 0, tzinfo=dt.UTC)
BASE = "http://localhost"


def new_sid(prefix: str = "CA") -> str:
    return prefix + uuid.uuid4().hex


def sign(url: str, data: dict, token: str = TEST_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, data)


def twilio_post(client, path_or_url: str, data: dict, *, token: str = TEST_TOKEN, signature: str | None = None):
    """POST like Twilio: the signature covers the full URL and every form field."""
    url = path_or_url if path_or_url.startswith("http") else BASE + path_or_url
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    headers = {"X-Twilio-Signature": signature if signature is not None else sign(url, data, token)}
    return client.post(path, data=data, headers=headers, base_url=f"{parts.scheme}://{parts.netloc}")


def parse(response) -> ET.Element:
    """The TwiML of a webhook response, checked for what must hold in every one of them."""
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/xml"
    root = ET.fromstring(response.get_data(as_text=True))
    assert root.tag == "Response"
    check_invariants(root)
    return root


def check_invariants(root: ET.Element) -> None:
    children = list(root)
    for index, verb in enumerate(children):
        if verb.tag == "Gather":
            # Silence must never end the call: a <Redirect> back to the same action follows.
            following = children[index + 1] if index + 1 < len(children) else None
            # (A <Dial> too: while the database is down, silence goes on to patient services.)
            assert following is not None and following.tag in ("Redirect", "Say", "Hangup", "Dial"), (
                "a <Gather> must be followed by a fallback verb")
            if following.tag == "Redirect":
                assert following.text == verb.get("action")
            assert verb.get("language") in ("en-US", "es-US")
            assert list(verb), "a <Gather> with nothing to say"
    for say in root.iter("Say"):
        assert say.get("language") in ("en-US", "es-US") and say.get("voice"), ET.tostring(say)
        assert (say.text or "").strip()
        assert "{" not in say.text, f"unfilled placeholder in {say.text!r}"


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


class Phone:
    def __init__(self, app, *, from_number: str = "+16175550123", call_sid: str | None = None):
        self.app = app
        self.client = app.test_client()
        self.call_sid = call_sid or new_sid()
        self.from_number = from_number
        self.doc: ET.Element | None = None
        self.history: list[ET.Element] = []

    def served_by(self, app) -> "Phone":
        """The rest of the call goes to another app (another worker, or one whose database is down)."""
        self.app, self.client = app, app.test_client()
        return self

    def fields(self, **extra) -> dict[str, str]:
        data = {"CallSid": self.call_sid, "AccountSid": "AC" + "1" * 32, "From": self.from_number,
                "To": "+18885550100", "CallStatus": "in-progress", "Direction": "inbound"}
        data.update({k: v for k, v in extra.items() if v is not None})
        return data

    def post(self, url: str, **extra) -> ET.Element:
        self.doc = parse(twilio_post(self.client, url, self.fields(**extra)))
        self.history.append(self.doc)
        return self.doc

    def call(self) -> ET.Element:
        return self.post("/voice/incoming", CallStatus="ringing")

    # ---- reading the last response ---------------------------------------------------------
    def gather(self) -> ET.Element:
        gather = self.doc.find("Gather")
        assert gather is not None, f"no <Gather> in {ET.tostring(self.doc, encoding='unicode')}"
        return gather

    def spoken(self) -> list[str]:
        return [say.text or "" for say in self.doc.iter("Say")]

    def text(self) -> str:
        return " ".join(self.spoken())

    def languages(self) -> set[str]:
        return {say.get("language") for say in self.doc.iter("Say")}

    def verbs(self) -> list[str]:
        return [child.tag for child in self.doc]

    def action(self) -> str:
        return self.gather().get("action")

    # ---- acting -------------------------------------------------------------------------------
    def press(self, digits: str) -> ET.Element:
        return self.post(self.action(), Digits=digits)

    def say(self, words: str) -> ET.Element:
        return self.post(self.action(), SpeechResult=words, Confidence="0.9")

    def silence(self) -> ET.Element:
        redirect = self.doc.find("Redirect")
        assert redirect is not None, "no <Redirect> after the <Gather>: silence would end the call"
        return self.post(redirect.text)

    def dial_result(self, status: str, **extra) -> ET.Element:
        dial = self.doc.find("Dial")
        assert dial is not None, "no <Dial>"
        return self.post(dial.get("action"), DialCallStatus=status, **extra)

    def accept_whisper(self) -> ET.Element:
        """The coordinator's phone: hear the whisper, press 1."""
        number = self.doc.find("Dial/Number")
        child = {"CallSid": new_sid(), "ParentCallSid": self.call_sid, "From": self.from_number,
                 "To": number.text, "CallStatus": "in-progress", "Direction": "outbound-dial"}
        whisper = parse(twilio_post(self.client, number.get("url"), child))
        action = whisper.find("Gather").get("action")
        return parse(twilio_post(self.client, action, {**child, "Digits": "1"}))

    def hang_up(self, status: str = "completed", duration: str = "60") -> None:
        response = twilio_post(self.client, "/voice/status",
                               self.fields(CallStatus=status, CallDuration=duration))
        # Twilio needs only the 200, and gets it even when the webhook fails: callers of
        # hang_up check the stored rows. An empty <Response/>, never words or a <Dial>.
        assert list(parse(response)) == []

    def press_through(self, *keys: str) -> ET.Element:
        for key in keys:
            self.press(key)
        return self.doc
