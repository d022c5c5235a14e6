"""Twilio's REST API, through the official client: fetching recordings for staff playback,
and deleting them when the retention schedule erases a request (voiceline/retention.py).

Recording media needs the account's credentials (with "Enforce HTTP Auth on Media URLs"),
so staff never get the Twilio URL: the app fetches the MP3 and streams it to a signed-in
user. Tests hand the real Client a fake HTTP client (app.extensions["voiceline.twilio_http"]).

twilio.rest and requests are imported on first use: every web worker would otherwise carry
several megabytes for a page that plays a message now and then.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from flask import Flask

if TYPE_CHECKING:
    from twilio.rest import Client

RECORDING_SID = re.compile(r"^RE[0-9a-fA-F]{32}$")
API = "https://api.twilio.com/2010-04-01"


class RecordingUnavailable(Exception):
    pass


def _unreachable(exc: Exception) -> RecordingUnavailable:
    """A network or client error, named by its type only (its text may carry the URL)."""
    return RecordingUnavailable(f"Twilio could not be reached ({type(exc).__name__}).")


def client(app: Flask) -> Client:
    from twilio.rest import Client

    account_sid = app.config["TWILIO_ACCOUNT_SID"]
    if not account_sid:
        raise RecordingUnavailable("TWILIO_ACCOUNT_SID is not set, so Twilio's recordings cannot be reached.")
    http = app.extensions.get("voiceline.twilio_http")
    if http is None:
        from voiceline.twilio_http import BinaryHttpClient

        http = BinaryHttpClient(timeout=10)
    return Client(account_sid, app.config["TWILIO_AUTH_TOKEN"], http_client=http)


def recording_audio(app: Flask, recording_sid: str) -> bytes:
    """The MP3 of one recording of this account."""
    if not RECORDING_SID.match(recording_sid or ""):
        raise RecordingUnavailable("Not a recording SID.")
    from twilio.base.exceptions import TwilioException

    api = client(app)
    url = f"{API}/Accounts/{api.account_sid}/Recordings/{recording_sid}.mp3"
    try:
        response = api.request("GET", url)
    except (TwilioException, OSError) as exc:
        raise _unreachable(exc) from None
    if response.status_code != 200:
        raise RecordingUnavailable(f"Twilio answered {response.status_code} for this recording.")
    content = response.content
    return content if isinstance(content, bytes) else content.encode("latin-1")


def delete_recording(app: Flask, recording_sid: str) -> None:
    """Delete one recording (its audio and its transcriptions) at Twilio. One that is already
    gone counts as deleted; so does a SID no Twilio recording can have (nothing to delete).
    Raises RecordingUnavailable when Twilio cannot be reached or refuses."""
    if not RECORDING_SID.match(recording_sid or ""):
        return
    from twilio.base.exceptions import TwilioException

    try:
        client(app).recordings(recording_sid).delete()
    except (TwilioException, OSError) as exc:
        status = getattr(exc, "status", None)
        if status == 404:
            return
        if status:
            raise RecordingUnavailable(f"Twilio answered {status} when asked to delete {recording_sid}.") from None
        raise _unreachable(exc) from None
