"""One request's page: the answers, the voice message, the caller's history, and the audit."""

import datetime as dt
import logging
import uuid
from zoneinfo import ZoneInfo

import pytest
import requests
import sqlalchemy as sa
from twilio.http import HttpClient
from twilio.http.response import Response

from tests.phone import Phone
from tests.staff import (
    StaffClient,
    add_request,
    add_staff,
    ago,
    audit_rows,
    candidacy_call,
    closed_hours_app,
    get_request,
    html,
    sign_in_page_redirect,
    staff_id,
    table_rows,
)
from voiceline.extensions import db
from voiceline.models import CallbackRequest, now_utc


@pytest.fixture
def app(make_app):
    return closed_hours_app(make_app)


class FakeTwilio(HttpClient):
    """Stands in for Twilio's API, installed in `app`: answers every request with an MP3 (or a
    status, or raises `error` as the network would). Like Twilio, it takes only a GET with the
    account's own credentials (an AssertionError here reaches the test: TESTING propagates it)."""

    def __init__(self, app, status: int = 200, body: bytes = b"ID3fake-mp3", error: Exception | None = None):
        super().__init__(logging.getLogger("fake-twilio"), False)
        self.app, self.status, self.body, self.error, self.urls = app, status, body, error, []
        app.extensions["voiceline.twilio_http"] = self

    def request(self, method, url, params=None, data=None, headers=None, auth=None, timeout=None,
                allow_redirects=False):
        assert method == "GET", f"recordings are fetched with GET, not {method}"
        credentials = (self.app.config["TWILIO_ACCOUNT_SID"], self.app.config["TWILIO_AUTH_TOKEN"])
        assert auth == credentials, "not the account's SID and auth token"
        self.urls.append(url)
        if self.error is not None:
            raise self.error
        return Response(self.status, self.body, {})


def only_request(app) -> CallbackRequest:
    with app.app_context():
        [item] = db.session.scalars(sa.select(CallbackRequest)).all()
        db.session.expunge(item)
        return item


def dl(doc, class_) -> dict[str, str]:
    box = doc.one("dl", class_=class_)
    return {div.one("dt").text: div.one("dd").text for div in box.find_all("div")}


def test_a_missed_call_never_asked_about_voicemail_is_treated_as_no(app, coordinator):
    callback_id = add_request(app, voicemail_ok=None, reason="missed_call", requested_by_caller=False, missed=True)
    facts = dl(coordinator.page(f"/staff/callbacks/{callback_id}"), "facts")
    assert facts["Voicemail may name the clinic?"] == "Not asked, so do not say the clinic's name"


def test_every_answer_with_its_question_and_the_full_number(app, coordinator):
    candidacy_call(app, answers=("1", "2", "1", "1", "2"))
    item = only_request(app)
    coordinator.post(f"/staff/callbacks/{item.id}/claim")  # the full number is for whoever holds it
    doc = coordinator.page(f"/staff/callbacks/{item.id}")
    assert doc.one("h1").text.startswith(f"Callback request #{item.id}")
    # Inside the queue's section, not the queue page itself.
    assert doc.one("nav", class_="site-nav").one("a", **{"aria-current": "true"}).text == "Callback queue"
    phone = doc.one("p", class_="phone-big").one("a")
    assert (phone.text, phone.get("href")) == ("(617) 555-0123", "tel:+16175550123")
    assert dl(doc, "answers") == {
        "Are you 18 or older?": "Yes",
        "Have you been diagnosed with depression or another mood disorder?": "No",
        "Have you tried two or more antidepressants without enough relief?": "Yes",
        "Are you under the care of a doctor or therapist right now?": "Yes",
        "Are any of these true for you? You have had psychosis, such as hearing or seeing things that "
        "others don't. Your blood pressure is high and not under control. Or you are pregnant.": "No",
    }
    facts = dl(doc, "facts")
    assert facts["Reason"] == "New patient (candidacy)" and facts["Best time"] == "Morning"
    assert facts["Voicemail may name the clinic?"] == "No, do not say the clinic's name"
    assert facts["Tries so far"] == "0 (0 of 3 without reaching them)"
    [entry] = audit_rows(app, "view_callback")
    assert (entry.callback_id, entry.actor, entry.address) == (item.id, "ana@clinic.example", "127.0.0.1")
    [entry] = audit_rows(app, "claim")
    assert (entry.callback_id, entry.actor) == (item.id, "ana@clinic.example")


def test_times_are_in_clinic_time(app, coordinator):
    created = dt.datetime(2026, 11, 27, 19, 5, tzinfo=dt.UTC)  # 2:05 PM in New York
    callback_id = add_request(app, created_at=created)
    doc = coordinator.page(f"/staff/callbacks/{callback_id}")
    received = dl(doc, "facts")["Received"]
    this_year = now_utc().astimezone(ZoneInfo("America/New_York")).year == 2026  # the year shows otherwise
    assert received.startswith("Fri 27 Nov, 2:05 PM" if this_year else "Fri 27 Nov 2026, 2:05 PM")
    assert doc.find("time", datetime="2026-11-27T19:05:00+00:00") is not None


def test_history_earlier_calls_other_requests_and_crisis_presses(app, coordinator):
    crisis = Phone(app, from_number="+16175550123")
    crisis.call()
    crisis.press("1")
    crisis.press("9")  # the crisis key at the main menu
    crisis.dial_result("completed")
    crisis.hang_up()
    old = add_request(app, phone="+16175550123", status="closed", outcome="wrong_number", created_at=ago(days=30),
                      closed_at=ago(days=29))
    call = candidacy_call(app)
    with app.app_context():
        item = db.session.scalar(sa.select(CallbackRequest).where(CallbackRequest.status == "open"))
        db.session.expunge(item)
    doc = coordinator.page(f"/staff/callbacks/{item.id}")
    safety = doc.one("section", class_="callout-safety")
    assert "This caller used the crisis line" in safety.text
    assert "dialled 988 — Connected" in safety.text
    calls = doc.one("section", **{"aria-labelledby": "calls-h"})
    rows = [tr.text for tr in calls.one("tbody").find_all("tr")]
    assert len(rows) == 2
    assert "Latest for this request" in rows[0] and "Asked for a callback" in rows[0]
    assert "welcome → main menu → prescreen age → prescreen diagnosis" in rows[0]
    assert "Put through to the 988 crisis line" in rows[1]
    others = doc.one("section", **{"aria-labelledby": "others-h"})
    assert f"#{old}" in others.text and "closed: Wrong number" in others.text
    assert others.one("a").get("href") == f"/staff/callbacks/{old}"
    assert call.call_sid not in doc.one("main").text  # Twilio ids are not for coordinators


def test_a_caller_who_gives_another_number_is_linked_to_their_open_request(app, coordinator):
    candidacy_call(app)  # from +16175550123, to be called back there
    candidacy_call(app, other_number="6175559876")  # the same phone, asking to be called elsewhere
    with app.app_context():
        first, second = db.session.scalars(sa.select(CallbackRequest).order_by(CallbackRequest.id)).all()
        assert (first.phone, second.phone) == ("+16175550123", "+16175559876")
    # Claimed, the page shows the other request's number in full only once that one is held by
    # the same coordinator too: until then someone else may claim it and call the same person.
    for item, other, other_phone, shown_after_claim in ((second, first, "(617) 555-0123", "•••-•••-0123"),
                                                        (first, second, "(617) 555-9876", "(617) 555-9876")):
        # Before it is claimed, the page shows no number to call (theirs or another's) in full.
        masked = coordinator.page(f"/staff/callbacks/{item.id}")
        others = masked.one("section", **{"aria-labelledby": "others-h"}).text
        assert f"call back at •••-•••-{other_phone[-4:]}" in others and other_phone not in masked.text
        coordinator.post(f"/staff/callbacks/{item.id}/claim")
        doc = coordinator.page(f"/staff/callbacks/{item.id}")
        notice = doc.one("p", id="open-elsewhere")
        assert "This caller has another open request" in notice.text
        assert notice.one("a").get("href") == f"/staff/callbacks/{other.id}"
        others = doc.one("section", **{"aria-labelledby": "others-h"}).text
        assert f"#{other.id}" in others and f"call back at {shown_after_claim}" in others
    facts = dl(coordinator.page(f"/staff/callbacks/{second.id}"), "facts")
    assert facts["Called from"].startswith("(617) 555-0123")
    coordinator.post(f"/staff/callbacks/{second.id}/release")
    facts = dl(coordinator.page(f"/staff/callbacks/{second.id}"), "facts")
    assert facts["Called from"].startswith("•••-•••-0123")
    # Finding the caller by the number they call from finds both requests, and says why.
    for typed in ("(617) 555-0123", "0123"):
        found = table_rows(html(coordinator.post("/staff/", {"phone": typed}, follow_redirects=True)), "queue-table")
        assert sorted(r["Request"].split()[0] for r in found) == sorted([f"#{first.id}", f"#{second.id}"])
        reasons = {r["Request"].split()[0]: r["Reason"] for r in found}
        assert "Called from •••-0123" in reasons[f"#{second.id}"] and "Called from" not in reasons[f"#{first.id}"]
    assert "Called from" not in dl(coordinator.page(f"/staff/callbacks/{first.id}"), "facts")


def test_a_closed_request_does_not_show_the_number_of_an_open_one_someone_else_holds(app, coordinator, colleague):
    """The same phone's closed request would otherwise give anyone the number (and a tel: link)
    that a colleague is calling right now."""
    candidacy_call(app)
    with app.app_context():
        first = db.session.scalar(sa.select(CallbackRequest))
    colleague.post(f"/staff/callbacks/{first.id}/claim")
    colleague.post(f"/staff/callbacks/{first.id}/attempts", {"outcome": "booked", "attempts_seen": "0"})
    candidacy_call(app)  # they call again: a new open request
    with app.app_context():
        second = db.session.scalars(sa.select(CallbackRequest).order_by(CallbackRequest.id.desc())).first()
    assert second.id != first.id and second.status == "open"
    colleague.post(f"/staff/callbacks/{second.id}/claim")
    closed = coordinator.page(f"/staff/callbacks/{first.id}")
    assert "(617) 555-0123" not in closed.text and not closed.find_all("a", href="tel:+16175550123")
    assert "This caller has another open request" in closed.one("p", id="open-elsewhere").text


def test_the_queue_flags_a_caller_who_used_the_crisis_line(app, coordinator):
    crisis = Phone(app, from_number="+16175550123")
    crisis.call()
    crisis.press_through("1", "9")  # the crisis key at the main menu
    crisis.dial_result("completed")
    crisis.hang_up()
    candidacy_call(app)  # the same phone, later: a callback request
    candidacy_call(app, from_number="+16175550124")
    candidacy_call(app, other_number="6175550188")  # the same phone again, to be called elsewhere
    rows = {r["Request"][-4:]: r["Reason"] for r in table_rows(coordinator.page("/staff/"), "queue-table")}
    assert "Used the crisis line" in rows["0123"] and "Used the crisis line" not in rows["0124"]
    assert "Used the crisis line" in rows["0188"]  # found through the number it called from


def test_caller_supplied_text_is_escaped(app, coordinator):
    phone = Phone(app, from_number="+16175550177")
    phone.call()
    phone.press_through("1", "2", "1", "1")  # English, insurance, uses insurance, commercial
    phone.say("<script>alert(1)</script> Aetna")
    phone.press_through("1", "1", "2", "2")  # callback capture: this number, mornings, no, no message
    phone.hang_up()
    item = only_request(app)
    assert item.answers["carrier"] == "<script>alert(1)</script> Aetna"
    coordinator.post(f"/staff/callbacks/{item.id}/notes", {"text": 'Said "<img src=x onerror=alert(2)>" & hung up'})
    for path in ("/staff/", f"/staff/callbacks/{item.id}"):
        response = coordinator.get(path)
        body = response.get_data(as_text=True)
        assert "<script>alert(1)" not in body and "<img src=x" not in body
        assert "&lt;script&gt;alert(1)&lt;/script&gt; Aetna" in body
        doc = html(response)
        assert doc.find_all("script") == [] and doc.find("img") is None
        assert "<script>alert(1)</script> Aetna" in doc.one("main").text
    doc = html(response)
    carrier_question = next(q for q in dl(doc, "answers") if q.startswith("Please say the name of your insurance"))
    assert carrier_question.endswith("To skip this question, press 1.")  # {skip_key} filled in
    assert 'Said "<img src=x onerror=alert(2)>" & hung up' in doc.one("section", id="notes").text


def test_viewing_my_item_renews_my_claim(app, coordinator):
    ana = staff_id(app, "ana@clinic.example")
    callback_id = add_request(app, claimed_by_id=ana, claimed_at=ago(minutes=20))
    doc = coordinator.page(f"/staff/callbacks/{callback_id}")
    assert "You are working on this request." in doc.one("section", class_="work").text
    assert get_request(app, callback_id).claimed_at > ago(minutes=1)


def test_someone_elses_item_says_who_has_it_and_is_not_taken(app, coordinator, colleague):
    ben = staff_id(app, "ben@clinic.example")
    claimed_at = ago(minutes=3)
    callback_id = add_request(app, claimed_by_id=ben, claimed_at=claimed_at)
    doc = coordinator.page(f"/staff/callbacks/{callback_id}")
    work = doc.one("section", class_="work")
    assert "Ben Carter is working on this request right now." in work.text
    assert "Their claim ends by itself after 30 minutes without activity" in work.text
    assert work.find("form", id="log-attempt") is None
    assert [b.text for b in work.find_all("button")] == []
    item = get_request(app, callback_id)
    assert (item.claimed_by_id, item.claimed_at) == (ben, claimed_at)


def test_a_missing_request_is_a_friendly_404(coordinator):
    for path in ("/staff/callbacks/999999", "/staff/no-such-page"):
        response = coordinator.get(path)
        assert response.status_code == 404
        assert html(response).one("h1").text == "Not found"
    # Under /voice/ only Twilio is answered: unsigned gets 403, never a staff page.
    response = coordinator.client.get("/voice/no-such-hook", base_url="https://localhost")
    assert response.status_code == 403 and b"Voiceline" not in response.get_data()


# ---- the voice message ---------------------------------------------------------------------------
def test_voice_message_plays_through_our_app_only(app, coordinator):
    fake = FakeTwilio(app)
    call = candidacy_call(app, message=True)
    item = only_request(app)
    assert item.recording_sid == call.recording_sid
    response = coordinator.get(f"/staff/callbacks/{item.id}")
    body = response.get_data(as_text=True)
    assert "api.twilio.com" not in body and call.recording_url not in body
    audio = html(response).one("audio")
    src = f"/staff/callbacks/{item.id}/recordings/{call.recording_sid}"
    assert audio.get("src") == src and "controls" in audio.attrs
    assert audit_rows(app, "play_recording") == [] and fake.urls == []  # nothing fetched until played

    played = coordinator.get(src)
    assert played.status_code == 200 and played.mimetype == "audio/mpeg"
    assert played.get_data() == b"ID3fake-mp3"
    assert played.headers["Cache-Control"] == "no-store"
    assert fake.urls == [f"https://api.twilio.com/2010-04-01/Accounts/AC{'1' * 32}/Recordings/"
                         f"{call.recording_sid}.mp3"]
    [entry] = audit_rows(app, "play_recording")
    assert (entry.callback_id, entry.actor, entry.detail) == (item.id, "ana@clinic.example",
                                                            {"recording_sid": call.recording_sid})
    # A second play, as Safari asks for audio: a two-byte probe, the file from its start, then
    # a seek. One more entry: the play, not each request.
    probe = coordinator.get(src, headers={"Range": "bytes=0-1"})
    assert probe.status_code == 206 and probe.headers["Content-Range"] == "bytes 0-1/11"
    part = coordinator.get(src, headers={"Range": "bytes=0-3"})
    assert part.status_code == 206 and part.get_data() == b"ID3f"
    assert part.headers["Content-Range"] == "bytes 0-3/11"
    seek = coordinator.get(src, headers={"Range": "bytes=4-"})
    assert seek.status_code == 206 and seek.get_data() == b"ake-mp3"
    assert len(fake.urls) == 4 and len(audit_rows(app, "play_recording")) == 2
    assert "api.twilio.com" not in coordinator.get("/staff/").get_data(as_text=True)


def test_a_range_from_past_the_start_with_no_play_before_it_is_audited(app, coordinator, admin):
    """bytes=1- is all of the message but its first byte: a look like any other. From someone
    whose play of it was audited a moment ago, the same range is that play going on."""
    FakeTwilio(app)
    call = candidacy_call(app, message=True)
    item = only_request(app)
    src = f"/staff/callbacks/{item.id}/recordings/{call.recording_sid}"
    rest = coordinator.get(src, headers={"Range": "bytes=1-"})
    assert rest.status_code == 206 and rest.get_data() == b"D3fake-mp3"
    assert len(audit_rows(app, "play_recording")) == 1
    coordinator.get(src, headers={"Range": "bytes=5-"})  # a seek in that play
    assert len(audit_rows(app, "play_recording")) == 1
    admin.get(src, headers={"Range": "bytes=5-"})  # someone else: their own look
    assert [e.actor for e in audit_rows(app, "play_recording")] == ["ana@clinic.example", "dana@clinic.example"]


def test_voice_message_needs_sign_in(app):
    fake = FakeTwilio(app)
    call = candidacy_call(app, message=True)
    item = only_request(app)
    response = StaffClient(app).get(f"/staff/callbacks/{item.id}/recordings/{call.recording_sid}")
    assert sign_in_page_redirect(response)
    assert fake.urls == [] and audit_rows(app, "play_recording") == []


def test_only_this_callers_messages_can_be_played(app, coordinator):
    fake = FakeTwilio(app)
    candidacy_call(app, message=True)
    item = only_request(app)
    other_sid = "RE" + uuid.uuid4().hex
    response = coordinator.get(f"/staff/callbacks/{item.id}/recordings/{other_sid}")
    assert response.status_code == 404
    assert fake.urls == [] and audit_rows(app, "play_recording") == []


def _unplayable_message_page(app, coordinator):
    """Open the caller's message while Twilio cannot give it: the plain 503 page, with a way back."""
    call = candidacy_call(app, message=True)
    item = only_request(app)
    response = coordinator.get(f"/staff/callbacks/{item.id}/recordings/{call.recording_sid}")
    assert response.status_code == 503 and response.mimetype == "text/html"
    doc = html(response)
    assert doc.one("h1").text == "The voice message cannot be played right now"
    assert "Try again in a few minutes" in doc.one("main").text
    assert doc.find("a", href=f"/staff/callbacks/{item.id}") is not None
    return doc, call


def test_unavailable_message_gets_a_plain_explanation(app, coordinator):
    FakeTwilio(app, status=404, body=b"{}")
    _unplayable_message_page(app, coordinator)
    assert audit_rows(app, "play_recording") == []  # nothing was played
    assert len(audit_rows(app, "play_recording_failed")) == 1  # the attempt to listen is still recorded


@pytest.mark.parametrize("error", [OSError("connection reset by peer"),
                                   requests.ConnectionError("connection refused"),  # what requests raises
                                   requests.ReadTimeout("read timed out")],
                         ids=["OSError", "ConnectionError", "ReadTimeout"])
def test_twilio_out_of_reach_gets_the_same_plain_explanation(app, coordinator, error, caplog):
    fake = FakeTwilio(app, error=error)
    doc, call = _unplayable_message_page(app, coordinator)
    assert f"Twilio could not be reached ({type(error).__name__})." in doc.one("main").text
    assert len(fake.urls) == 1  # it was tried, once
    [entry] = audit_rows(app, "play_recording_failed")
    assert entry.detail == {"recording_sid": call.recording_sid} and audit_rows(app, "play_recording") == []
    assert any("recording unavailable" in r.getMessage() for r in caplog.records)


def test_a_recording_of_another_caller_cannot_be_played_here(app, coordinator):
    fake = FakeTwilio(app)
    theirs = candidacy_call(app, from_number="+16175550199", message=True)
    candidacy_call(app, from_number="+16175550123")  # mine: no message of its own
    with app.app_context():
        mine, other = (db.session.scalar(sa.select(CallbackRequest.id).where(CallbackRequest.phone == phone))
                       for phone in ("+16175550123", "+16175550199"))
    response = coordinator.get(f"/staff/callbacks/{mine}/recordings/{theirs.recording_sid}")
    assert response.status_code == 404
    assert html(response).one("h1").text == "No such message"
    assert fake.urls == [] and audit_rows(app, "play_recording") == []
    # The same message plays from its own caller's page: the 404 was about whose it is.
    assert coordinator.get(f"/staff/callbacks/{other}/recordings/{theirs.recording_sid}").status_code == 200
    assert [e.callback_id for e in audit_rows(app, "play_recording")] == [other]


def test_without_an_account_sid_the_page_says_messages_cannot_be_played(make_app):
    app = closed_hours_app(make_app)
    app.config["TWILIO_ACCOUNT_SID"] = None
    add_staff(app, "ana@clinic.example", "Ana Ortiz")
    browser = StaffClient(app).signed_in_as("ana@clinic.example")
    candidacy_call(app, message=True)
    doc = browser.page(f"/staff/callbacks/{only_request(app).id}")
    section = doc.one("section", **{"aria-labelledby": "message-h"})
    assert section.find("audio") is None and "TWILIO_ACCOUNT_SID is not set" in section.text
