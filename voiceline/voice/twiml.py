"""The only importer of twilio.twiml: engine verbs -> TwiML text/xml responses.

Building TwiML with the SDK costs more than everything else a webhook does together
(hundreds of microseconds for a menu), while the responses repeat: the same node, language
and step number give the same document for every caller. So each app keeps a cache from
(origin, verbs) to the serialized document (the verbs are frozen dataclasses) for the
documents asked for more than once. The only caller data verbs can hold are a transfer's
parent CallSid and a callback read-back (the number the caller typed, or the last four
digits of the number we will call); a document with a read-back is built, sent and never kept.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from xml.sax.saxutils import escape

from flask import Flask, Response, current_app, url_for
from twilio.twiml.voice_response import VoiceResponse

from voiceline.flow.model import Flow
from voiceline.flow.steps import Dial, Gather, Hangup, Record, Redirect, Say, Target, Verb
from voiceline.voice.security import origin

TWIML_MIMETYPE = "text/xml"
# Seconds of silence that end a spoken answer (a carrier's name) when a speechModel is set.
SPEECH_TIMEOUT_SECONDS = 2


CACHE_SIZE = 2048


def _absolute_url(target: Target, base: str) -> str:
    """Action URLs are absolute, on PUBLIC_BASE_URL when set: what Twilio requests and signs."""
    return base + url_for(f"voice.{target.endpoint}", **dict(target.params))


def _say(parent, flow: Flow, say: Say) -> None:
    language = flow.languages[say.lang]
    parent.say(say.text, voice=language.voice, language=language.tag)


def build(flow: Flow, verbs: list[Verb] | tuple[Verb, ...], base: str | None = None) -> VoiceResponse:
    base = base if base is not None else origin()
    absolute_url = functools.partial(_absolute_url, base=base)
    response = VoiceResponse()
    for verb in verbs:
        if isinstance(verb, Say):
            _say(response, flow, verb)
        elif isinstance(verb, Gather):
            language = flow.languages[verb.lang]
            options = {
                "action": absolute_url(verb.action),
                "method": "POST",
                "input": "dtmf speech" if verb.speech else "dtmf",
                "timeout": verb.timeout,
                "language": language.tag,
            }
            if verb.num_digits:
                options["num_digits"] = verb.num_digits
            if verb.finish_on_key:
                options["finish_on_key"] = verb.finish_on_key
            if verb.speech:
                options["speech_model"] = language.speech_model
                # Twilio takes "auto" only without a speechModel (warning 13335): with one,
                # seconds of silence that end the answer.
                options["speech_timeout"] = SPEECH_TIMEOUT_SECONDS if language.speech_model else "auto"
                if verb.hints:
                    options["hints"] = verb.hints
            gather = response.gather(**options)
            for say in verb.says:
                _say(gather, flow, say)
        elif isinstance(verb, Redirect):
            response.redirect(absolute_url(verb.target), method="POST")
        elif isinstance(verb, Dial):
            if verb.action is None:  # static TwiML: the call goes on to the next verb
                dial = response.dial(timeout=verb.timeout)
            elif verb.whisper is not None:
                # answerOnBridge: the caller keeps hearing ringing while the coordinator hears the whisper.
                dial = response.dial(action=absolute_url(verb.action), method="POST", timeout=verb.timeout,
                                     answer_on_bridge=True)
            else:
                dial = response.dial(action=absolute_url(verb.action), method="POST", timeout=verb.timeout)
            if verb.whisper is not None:
                dial.number(verb.number, url=absolute_url(verb.whisper), method="POST")
            else:
                dial.number(verb.number)
        elif isinstance(verb, Record):
            response.record(
                action=absolute_url(verb.action),
                method="POST",
                max_length=verb.max_length,
                timeout=5,
                finish_on_key=verb.finish_on_key,
                play_beep=True,
                trim="trim-silence",
                recording_status_callback=absolute_url(verb.status_callback),
                recording_status_callback_method="POST",
                recording_status_callback_event="completed absent",
            )
        elif isinstance(verb, Hangup):
            response.hangup()
        else:  # pragma: no cover - the engine has no other verbs
            raise TypeError(f"unknown verb {verb!r}")
    return response


# Marks a read-back's place in a template: a private-use character, in no prompt and not
# escaped by ElementTree; the sentence goes in escaped as ElementTree escapes text (&, <, >).
_SLOT = "\ue000"


def _reads_back(verbs: tuple[Verb, ...]) -> bool:
    """Whether a document would hold a caller's number or its last digits."""
    for verb in verbs:
        says = verb.says if isinstance(verb, Gather) else (verb,) if isinstance(verb, Say) else ()
        if any(say.personal for say in says):
            return True
    return False


class DocumentCache:
    """(origin, verbs) -> TwiML text, for the documents that repeat.

    Most documents are the same for every caller: a node's menu, in a language, at a step
    number. A document that reads back a caller's number (or its last four digits) is never
    kept: the engine marks those sentences (`Say.personal`), and the document is filled in
    from a template with a slot for each, which is the same for every caller. Other documents
    can be unique too (a transfer's whisper URL carries the call's SID), and kept they would
    fill the cache and push out the ones that repeat; so a document is kept the second time
    it is asked for, and the first time only its hash is noted. Both stores are bounded and
    start over when full.
    """

    def __init__(self, flow: Flow, size: int = CACHE_SIZE):
        self.flow = flow
        self.size = size
        self._texts: dict[tuple[str, tuple[Verb, ...]], str] = {}
        self._asked_once: set[int] = set()

    def __call__(self, base: str, verbs: tuple[Verb, ...]) -> str:
        key = (base, verbs)
        text = self._texts.get(key)
        if text is not None:
            return text
        if _reads_back(verbs):
            return self._with_read_backs(base, verbs)
        text = str(build(self.flow, verbs, base))
        fingerprint = hash(key)
        if fingerprint in self._asked_once:
            if len(self._texts) >= self.size:
                self._texts.clear()
            self._texts[key] = text
        else:
            if len(self._asked_once) >= 4 * self.size:
                self._asked_once.clear()
            self._asked_once.add(fingerprint)
        return text

    def _with_read_backs(self, base: str, verbs: tuple[Verb, ...]) -> str:
        """A document with read-backs, from a template that has none: each read-back sentence
        is swapped for a numbered slot, so the template is the same for every caller (and is
        kept like any other document); the caller's sentences are escaped into the slots."""
        sentences: list[str] = []

        def slot(say: Say) -> Say:
            if not say.personal:
                return say
            if not say.text:  # nothing of the caller's in it
                return Say(say.text, say.lang)
            sentences.append(say.text)
            return Say(f"{_SLOT}{len(sentences) - 1}{_SLOT}", say.lang)

        template = self(base, tuple(
            replace(verb, says=tuple(slot(say) for say in verb.says)) if isinstance(verb, Gather)
            else slot(verb) if isinstance(verb, Say) else verb
            for verb in verbs
        ))
        for number, sentence in enumerate(sentences):
            template = template.replace(f"{_SLOT}{number}{_SLOT}", escape(sentence), 1)
        return template

    def kept(self) -> list[str]:
        """The documents kept, for tests and for looking inside."""
        return list(self._texts.values())


def init_app(app: Flask) -> None:
    app.extensions["voiceline.twiml"] = DocumentCache(app.extensions["voiceline.flow"])


def render(flow: Flow, verbs: list[Verb] | tuple[Verb, ...]) -> Response:
    builder = current_app.extensions.get("voiceline.twiml")
    verbs = tuple(verbs)
    text = builder(origin(), verbs) if builder is not None else str(build(flow, verbs))
    return Response(text, status=200, mimetype=TWIML_MIMETYPE)


EMPTY = str(VoiceResponse())


def empty() -> Response:
    return Response(EMPTY, status=200, mimetype=TWIML_MIMETYPE)
