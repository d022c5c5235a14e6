"""The only importer of twilio.twiml: engine verbs -> TwiML text/xml responses."""

from __future__ import annotations

from flask import Response, current_app, request, url_for
from twilio.twiml.voice_response import VoiceResponse

from voiceline.flow.engine import Dial, Gather, Hangup, Record, Redirect, Say, Target, Verb
from voiceline.flow.model import Flow

TWIML_MIMETYPE = "text/xml"


def absolute_url(target: Target) -> str:
    """Action URLs are absolute, on PUBLIC_BASE_URL when set: what Twilio requests and signs."""
    params = dict(target.params)
    path = url_for(f"voice.{target.endpoint}", **params)
    base = current_app.config["PUBLIC_BASE_URL"] or request.host_url.rstrip("/")
    return base + path


def _say(parent, flow: Flow, say: Say) -> None:
    language = flow.languages[say.lang]
    parent.say(say.text, voice=language.voice, language=language.tag)


def build(flow: Flow, verbs: list[Verb]) -> VoiceResponse:
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
                options["speech_timeout"] = "auto"
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
                finish_on_key="#",
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


def render(flow: Flow, verbs: list[Verb]) -> Response:
    return Response(str(build(flow, verbs)), status=200, mimetype=TWIML_MIMETYPE)


def empty() -> Response:
    return Response(str(VoiceResponse()), status=200, mimetype=TWIML_MIMETYPE)
