"""The two floors any Flask IVR stands on, served the same way as the app (gunicorn, 2 sync workers).

    POST /bare     a fixed TwiML menu, built once at import
    POST /signed   the same, after twilio's RequestValidator.validate() of X-Twilio-Signature
                   over request.url and request.form (the SDK's standard call; it computes the
                   HMAC twice, for the URL with and without the port)
    GET  /healthz  for the bench to know the server is up

Both ignore the query string and form otherwise; the load generator sends them the same
signed webhook bodies and action-URL query strings the app gets.
"""

from __future__ import annotations

import os

from flask import Flask, Response, abort, request
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse

TOKEN = os.environ.get("TWILIO_AUTH_TOKEN", "")


def _menu() -> str:
    """A main-menu-like TwiML document: a <Gather> with the options read out, then a <Redirect>."""
    voice, language = "Polly.Joanna-Neural", "en-US"
    response = VoiceResponse()
    gather = response.gather(action="https://voice.example.org/voice/step/main_menu?lang=en&step=2",
                             method="POST", input="dtmf", timeout=6, language=language, num_digits=1)
    for text in (
        "If this is an emergency, hang up and dial 9 1 1.",
        "If you are thinking about suicide or are in crisis, press 9 at any time to reach the 9 8 8 "
        "Suicide and Crisis Lifeline.",
        "To find out if ketamine treatment may be right for you, press 1.",
        "For insurance and cost, press 2.",
        "To hear what a treatment visit is like, press 3.",
        "If you are already a patient, press 4.",
        "To speak with patient services, press 5.",
        "To hear these options again, press 6.",
    ):
        gather.say(text, voice=voice, language=language)
    response.redirect("https://voice.example.org/voice/step/main_menu?lang=en&step=2", method="POST")
    return str(response)


MENU = _menu().encode()

app = Flask(__name__)
validator = RequestValidator(TOKEN)


@app.post("/bare")
def bare():
    return Response(MENU, status=200, mimetype="text/xml")


@app.post("/signed")
def signed():
    if not validator.validate(request.url, request.form, request.headers.get("X-Twilio-Signature", "")):
        abort(403)
    return Response(MENU, status=200, mimetype="text/xml")


@app.get("/healthz")
def healthz():
    return {"status": "ok"}
