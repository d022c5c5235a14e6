"""A phone call without a phone: drives the real app in process with signed Twilio requests.

`SimulatedCall` plays Twilio's part: it posts the incoming-call webhook, reads the TwiML,
follows <Gather>, <Redirect>, <Dial>, <Record> and <Hangup> the way Twilio would, and sends
the status callback when the call ends. Who answers the prompts is up to a `Caller`:
`voiceline simulate` asks a person at the terminal; tests pass a script.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from flask import Flask
from twilio.request_validator import RequestValidator


@dataclass
class DialOutcome:
    status: str  # completed, busy, no-answer, failed
    accept: bool = False  # the coordinator pressed 1 at the whisper
    duration: int = 60


class Caller:
    """What a simulated caller does; subclasses answer from a terminal or a script."""

    def hear(self, text: str, lang: str) -> None: ...

    def keys(self, gather: ET.Element) -> tuple[str, str] | None:
        """("digits", "12") or ("speech", "words"), or None for silence."""
        raise NotImplementedError

    def dial(self, number: str, whisper: list[str]) -> DialOutcome:
        raise NotImplementedError

    def record(self) -> str | None:
        """Words of a voice message, or None to stay silent."""
        raise NotImplementedError

    def note(self, text: str) -> None: ...


@dataclass
class ScriptedCaller(Caller):
    """Answers from a list: "1" (keys), "" (silence), "say:words", "rec:words", "rec:",
    and for transfers "dial:accept", "dial:busy", "dial:no-answer", "dial:voicemail"."""

    script: list[str]
    heard: list[tuple[str, str]] = field(default_factory=list)
    whispers: list[str] = field(default_factory=list)

    def _next(self, kind: str) -> str:
        if not self.script:
            raise AssertionError(f"the script ran out at a {kind}; heard so far: {self.heard[-3:]}")
        return self.script.pop(0)

    def hear(self, text: str, lang: str) -> None:
        self.heard.append((lang, text))

    def keys(self, gather):
        answer = self._next("prompt")
        if answer.startswith("say:"):
            return ("speech", answer[4:])
        return ("digits", answer) if answer else None

    def dial(self, number, whisper):
        self.whispers.extend(whisper)
        answer = self._next("transfer")
        kind = answer.removeprefix("dial:")
        if kind == "accept":
            return DialOutcome("completed", accept=True)
        if kind == "voicemail":
            return DialOutcome("completed", accept=False, duration=20)
        return DialOutcome(kind)

    def record(self):
        answer = self._next("recording")
        words = answer.removeprefix("rec:")
        return words or None

    @property
    def transcript(self) -> str:
        return " ".join(text for _, text in self.heard)


def new_sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


class SimulatedCall:
    """One call, as Twilio would make it, against `app` in process."""

    def __init__(self, app: Flask, caller: Caller, *, from_number: str = "+16175550123",
                 to_number: str = "+18885550100", max_requests: int = 200):
        self.app = app
        self.client = app.test_client()
        self.caller = caller
        self.validator = RequestValidator(app.config["TWILIO_AUTH_TOKEN"])
        self.base = app.config["PUBLIC_BASE_URL"] or "http://localhost"
        self.call_sid = new_sid("CA")
        self.account_sid = app.config["TWILIO_ACCOUNT_SID"] or "AC" + "0" * 32
        self.from_number = from_number
        self.to_number = to_number
        self.requests: list[tuple[str, dict[str, str], int]] = []
        self.max_requests = max_requests
        self.ended = False

    # ---- HTTP --------------------------------------------------------------------------
    def _common(self) -> dict[str, str]:
        return {"CallSid": self.call_sid, "AccountSid": self.account_sid, "From": self.from_number,
                "To": self.to_number, "CallStatus": "in-progress", "Direction": "inbound", "ApiVersion": "2010-04-01"}

    def post(self, url: str, data: dict[str, str]) -> ET.Element | None:
        """Sign and send one webhook; the parsed <Response>, or None for an empty body."""
        if len(self.requests) >= self.max_requests:
            raise AssertionError(f"more than {self.max_requests} requests in one call: a loop?")
        if not url.startswith(("http://", "https://")):
            url = self.base + url
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        signature = self.validator.compute_signature(url, data)
        response = self.client.post(path, data=data, headers={"X-Twilio-Signature": signature},
                                    base_url=f"{parts.scheme}://{parts.netloc}")
        self.requests.append((url, data, response.status_code))
        if response.status_code != 200:
            raise AssertionError(f"{url} answered {response.status_code}")
        body = response.get_data(as_text=True)
        return ET.fromstring(body) if body.strip() else None

    # ---- the call ------------------------------------------------------------------------
    def run(self) -> None:
        document = self.post("/voice/incoming", {**self._common(), "CallStatus": "ringing"})
        while document is not None and not self.ended:
            document = self._play(document)
        self.hang_up()

    def hang_up(self) -> None:
        if not self.ended:
            self.ended = True
            self.post("/voice/status", {**self._common(), "CallStatus": "completed", "CallDuration": "95"})

    def _say_all(self, elements: Iterable[ET.Element]) -> None:
        for element in elements:
            if element.tag == "Say":
                self.caller.hear(element.text or "", element.get("language", ""))

    def _play(self, document: ET.Element) -> ET.Element | None:
        for verb in document:
            if verb.tag == "Say":
                self.caller.hear(verb.text or "", verb.get("language", ""))
            elif verb.tag == "Gather":
                self._say_all(verb)
                answer = self.caller.keys(verb)
                if answer is None:
                    continue  # silence: Twilio moves on to the next verb (our Redirect)
                kind, value = answer
                data = {**self._common(), "Digits": value} if kind == "digits" else {
                    **self._common(), "SpeechResult": value, "Confidence": "0.91"}
                return self.post(verb.get("action"), data)
            elif verb.tag == "Redirect":
                return self.post(verb.text, self._common())
            elif verb.tag == "Dial":
                return self._dial(verb)
            elif verb.tag == "Record":
                words = self.caller.record()
                if words is None:
                    continue
                recording_sid = new_sid("RE")
                recording = {"RecordingSid": recording_sid, "RecordingDuration": str(max(1, len(words) // 10)),
                             "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{self.account_sid}"
                                             f"/Recordings/{recording_sid}"}
                next_document = self.post(verb.get("action"), {**self._common(), **recording, "Digits": "#"})
                self.post(verb.get("recordingStatusCallback"), {
                    "AccountSid": self.account_sid, "CallSid": self.call_sid, "RecordingStatus": "completed",
                    "RecordingChannels": "1", "RecordingSource": "RecordVerb", **recording})
                return next_document
            elif verb.tag == "Hangup":
                return None
        return None  # the end of a document ends the call

    def _dial(self, verb: ET.Element) -> ET.Element | None:
        number_element = verb.find("Number")
        number = (number_element.text if number_element is not None else verb.text) or ""
        whisper_url = number_element.get("url") if number_element is not None else None
        whisper_texts: list[str] = []
        whisper_doc = None
        child = {"CallSid": new_sid("CA"), "ParentCallSid": self.call_sid, "AccountSid": self.account_sid,
                 "From": self.from_number, "To": number, "Direction": "outbound-dial", "CallStatus": "in-progress"}
        if whisper_url:
            whisper_doc = self.post(whisper_url, child)
            for element in whisper_doc.iter("Say") if whisper_doc is not None else []:
                whisper_texts.append(element.text or "")
        outcome = self.caller.dial(number, whisper_texts)
        if whisper_doc is not None and outcome.accept:
            gather = whisper_doc.find("Gather")
            if gather is not None:
                self.post(gather.get("action"), {**child, "Digits": "1"})
        duration = str(outcome.duration) if outcome.status == "completed" else "0"
        # As Twilio: connected when answered, and, behind a whisper, only once the coordinator pressed 1.
        bridged = outcome.status == "completed" and (whisper_doc is None or outcome.accept)
        return self.post(verb.get("action"), {**self._common(), "DialCallStatus": outcome.status,
                                              "DialCallDuration": duration, "DialCallSid": child["CallSid"],
                                              "DialBridged": "true" if bridged else "false"})
