"""voiceline.twilio_http.BinaryHttpClient against a real HTTP server on 127.0.0.1: the
credentials reach the server, audio comes back byte for byte, and a Twilio that cannot be
reached (refused, or silent past the timeout) is an OSError, which is what
twilio_api.recording_audio turns into RecordingUnavailable (and the staff page into a 503)."""

from __future__ import annotations

import base64
import socket
import threading
from contextlib import closing

import pytest
import requests
import sqlalchemy as sa
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.phone import TEST_TOKEN
from tests.staff import audit_rows, candidacy_call, closed_hours_app, html
from voiceline import twilio_api
from voiceline.extensions import db
from voiceline.models import CallbackRequest
from voiceline.twilio_http import BinaryHttpClient

ACCOUNT_SID = "AC" + "1" * 32  # tests/conftest.py's TWILIO_ACCOUNT_SID
# An MP3 frame header, every byte value once, and sequences that are not UTF-8 (nor survive
# a decode and re-encode): what a text-minded client would mangle.
AUDIO = b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90d" + bytes(range(256)) + b"\xc3\x28\xa0\xa1\xe2\x82\xff\x00\x00"


class Twilio:
    """A WSGI app standing in for api.twilio.com: keeps what it was sent, answers `status`
    with `body`."""

    def __init__(self):
        self.seen: list[dict[str, str | None]] = []
        self.status, self.body = 200, AUDIO

    @Request.application
    def __call__(self, request: Request) -> Response:
        self.seen.append({"method": request.method, "path": request.path,
                          "authorization": request.headers.get("Authorization")})
        return Response(self.body, status=self.status, mimetype="audio/mpeg")


@pytest.fixture
def twilio():
    """The fake Twilio, served by werkzeug on a free port of 127.0.0.1 in a thread; shut down
    and joined after the test."""
    fake = Twilio()
    server = make_server("127.0.0.1", 0, fake)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-twilio",
                              daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield fake
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


@pytest.fixture
def http():
    client = BinaryHttpClient(timeout=5)
    yield client
    client.session.close()


@pytest.fixture
def refused_url():
    """A port bound on 127.0.0.1 but not listening: connecting is refused at once (and no
    other process can take the port while the test runs)."""
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def silent_url():
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def within(seconds: float, call):
    """call() in a thread, its result or its exception here; a failure, not a hung test run,
    if it is still waiting after `seconds` (a timeout lost). Joined, not slept on: a passing
    call returns as soon as it is done."""
    outcome: dict[str, object] = {}

    def run():
        try:
            outcome["result"] = call()
        except BaseException as exc:  # handed to the test below
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="client-under-test", daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still waiting after {seconds} s: no timeout reached the socket"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# ---- the client itself ---------------------------------------------------------------------------
def test_the_credentials_go_in_the_authorization_header(twilio, http):
    response = http.request("GET", twilio.url + "/2010-04-01/x.mp3", auth=(ACCOUNT_SID, "s3cret:with-colon"))
    assert response.status_code == 200
    assert twilio.seen == [{"method": "GET", "path": "/2010-04-01/x.mp3",
                            "authorization": basic(ACCOUNT_SID, "s3cret:with-colon")}]


def test_no_credentials_no_authorization_header(twilio, http):
    http.request("GET", twilio.url + "/anything")
    assert [seen["authorization"] for seen in twilio.seen] == [None]


def test_audio_comes_back_byte_for_byte(twilio, http):
    response = http.request("GET", twilio.url + "/x.mp3", auth=(ACCOUNT_SID, TEST_TOKEN))
    assert type(response.content) is bytes
    assert response.content == AUDIO
    assert response.status_code == 200 and response.headers["Content-Type"] == "audio/mpeg"


def test_an_error_status_is_passed_on_with_its_body(twilio, http):
    twilio.status, twilio.body = 404, b'{"code": 20404}'
    response = http.request("GET", twilio.url + "/x.mp3", auth=(ACCOUNT_SID, TEST_TOKEN))
    assert (response.status_code, response.content, response.ok) == (404, b'{"code": 20404}', False)


def test_a_refused_connection_is_an_oserror(refused_url, http):
    with pytest.raises(OSError) as raised:
        http.request("GET", refused_url + "/x.mp3", auth=(ACCOUNT_SID, TEST_TOKEN))
    assert isinstance(raised.value, requests.ConnectionError)


def test_a_server_that_never_answers_times_out_as_an_oserror(silent_url):
    http = BinaryHttpClient(timeout=0.2)
    try:
        with pytest.raises(OSError) as raised:
            within(10, lambda: http.request("GET", silent_url + "/x.mp3", auth=(ACCOUNT_SID, TEST_TOKEN)))
    finally:
        http.session.close()
    assert isinstance(raised.value, requests.Timeout)


# ---- through the real twilio Client, as the recording page uses it -------------------------------
@pytest.fixture
def app(make_app):
    return closed_hours_app(make_app)


@pytest.fixture
def api_at(monkeypatch):
    """Point twilio_api at `url` instead of https://api.twilio.com."""
    def point(url: str) -> None:
        monkeypatch.setattr(twilio_api, "API", url + "/2010-04-01")
    return point


def test_recording_audio_asks_for_the_mp3_with_the_accounts_credentials(app, twilio, api_at):
    api_at(twilio.url)
    sid = "RE" + "a" * 32
    audio = twilio_api.recording_audio(app, sid)  # the app's own client: BinaryHttpClient
    assert audio == AUDIO
    assert twilio.seen == [{"method": "GET", "path": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{sid}.mp3",
                            "authorization": basic(ACCOUNT_SID, TEST_TOKEN)}]


def test_the_staff_page_plays_what_twilio_sent(app, coordinator, twilio, api_at):
    api_at(twilio.url)
    call = candidacy_call(app, message=True)
    with app.app_context():
        callback_id = db.session.scalar(sa.select(CallbackRequest.id))
    played = coordinator.get(f"/staff/callbacks/{callback_id}/recordings/{call.recording_sid}")
    assert played.status_code == 200 and played.mimetype == "audio/mpeg"
    assert played.get_data() == AUDIO
    assert [seen["authorization"] for seen in twilio.seen] == [basic(ACCOUNT_SID, TEST_TOKEN)]
    assert [e.callback_id for e in audit_rows(app, "play_recording")] == [callback_id]


def test_the_staff_page_explains_a_refused_connection(app, coordinator, refused_url, api_at):
    api_at(refused_url)
    call = candidacy_call(app, message=True)
    with app.app_context():
        callback_id = db.session.scalar(sa.select(CallbackRequest.id))
    response = coordinator.get(f"/staff/callbacks/{callback_id}/recordings/{call.recording_sid}")
    assert response.status_code == 503
    doc = html(response)
    assert doc.one("h1").text == "The voice message cannot be played right now"
    assert "Twilio could not be reached (ConnectionError)." in doc.one("main").text


def test_recording_audio_says_twilio_could_not_be_reached(app, refused_url, api_at):
    api_at(refused_url)
    with pytest.raises(twilio_api.RecordingUnavailable, match=r"Twilio could not be reached \(ConnectionError\)"):
        twilio_api.recording_audio(app, "RE" + "a" * 32)


def test_a_timeout_is_unavailable_too(app, silent_url, api_at):
    api_at(silent_url)
    http = app.extensions["voiceline.twilio_http"] = BinaryHttpClient(timeout=0.2)
    try:
        with pytest.raises(twilio_api.RecordingUnavailable, match=r"could not be reached \(ReadTimeout\)"):
            within(10, lambda: twilio_api.recording_audio(app, "RE" + "a" * 32))
    finally:
        http.session.close()
