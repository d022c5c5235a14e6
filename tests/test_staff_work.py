"""Working the queue from the pages: Next, Claim, Release, attempts, notes, Reopen."""

import datetime as dt

import pytest
import sqlalchemy as sa

from tests.staff import (
    StaffClient,
    add_request,
    add_staff,
    ago,
    audit_rows,
    flashes,
    follow,
    get_request,
    html,
    staff_id,
    table_rows,
)
from voiceline.extensions import db
from voiceline.models import CallbackAttempt, CallbackNote, CallbackRequest, now_utc
from voiceline.models.callbacks import PRIORITY_MISSED
from voiceline.queue.work import OUTCOMES
from voiceline.staff import formatting


class Clock:
    """The staff pages' clock, set by the test: `clock.now += dt.timedelta(minutes=61)`."""

    def __init__(self, monkeypatch):
        self.now = now_utc()
        for module in ("queue_views", "work_views"):
            monkeypatch.setattr(f"voiceline.staff.{module}.now_utc", lambda: self.now)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    return Clock(monkeypatch)


def clinic_time(app, when: dt.datetime) -> str:
    """A time as the pages write it (clinic time)."""
    with app.app_context():
        return formatting.clinic_time(when)


def attempts(app, callback_id: int) -> list[CallbackAttempt]:
    with app.app_context():
        rows = db.session.scalars(sa.select(CallbackAttempt).where(CallbackAttempt.callback_id == callback_id)
                                  .order_by(CallbackAttempt.id)).all()
        db.session.expunge_all()
        return rows


def _queue_rows(browser, query: str = ""):
    return table_rows(browser.page("/staff/" + query), "queue-table")


def ids_in_queue(browser):
    return [r["Request"].split()[0] for r in _queue_rows(browser)]


# ---- Next ------------------------------------------------------------------------------------------
def test_next_claims_the_first_in_line_and_opens_it(app, coordinator, colleague, admin):
    missed = add_request(app, reason="missed_call", requested_by_caller=False, missed=True,
                         priority=PRIORITY_MISSED, created_at=ago(hours=9))
    first = add_request(app, created_at=ago(hours=2))
    second = add_request(app, created_at=ago(hours=1))
    response = coordinator.post("/staff/next")
    assert response.headers["Location"] == f"/staff/callbacks/{first}"
    doc = html(coordinator.get(response.headers["Location"]))
    assert flashes(doc) == [f"Done: Request #{first} is yours now. Others can see you are working on it."]
    assert "You are working on this request." in doc.one("section", class_="work").text
    assert get_request(app, first).claimed_by_id == staff_id(app, "ana@clinic.example")
    # Colleagues' Next skips what is taken.
    for browser, expected in ((colleague, second), (admin, missed)):
        response = browser.post("/staff/next")
        assert response.headers["Location"] == f"/staff/callbacks/{expected}"
        browser.get(response.headers["Location"])
    claims = [e for e in audit_rows(app, "claim") if e.detail == {"via": "next"}]
    assert [(e.callback_id, e.actor) for e in claims] == [
        (first, "ana@clinic.example"), (second, "ben@clinic.example"), (missed, "dana@clinic.example")]


def test_next_with_every_open_request_taken_says_so(app, coordinator, colleague):
    """Not "nothing waiting" above "2 open requests": they are all being worked on."""
    add_request(app, status="closed", outcome="booked", closed_at=ago(hours=1))
    doc = follow(coordinator, coordinator.post("/staff/next"))
    assert flashes(doc) == ["Note: There is nothing waiting in the queue right now."]
    taken = [add_request(app, created_at=ago(hours=2)), add_request(app, created_at=ago(hours=1))]
    for callback_id in taken:
        colleague.post(f"/staff/callbacks/{callback_id}/claim")
    doc = follow(coordinator, coordinator.post("/staff/next"))
    assert flashes(doc) == ["Note: All 2 open requests are being worked on right now."]
    assert doc.one("h1").text == "Callback queue"
    assert doc.one("p", class_="lead").text.startswith("2 open requests.")
    colleague.post(f"/staff/callbacks/{taken[0]}/release")
    colleague.post(f"/staff/callbacks/{taken[0]}/claim")  # released and taken back: still theirs
    with app.app_context():
        db.session.execute(sa.update(CallbackRequest).where(CallbackRequest.id == taken[1])
                           .values(status="closed", outcome="booked"))
        db.session.commit()
    doc = follow(coordinator, coordinator.post("/staff/next"))
    assert flashes(doc) == ["Note: The one open request is being worked on by a colleague right now."]
    assert all(get_request(app, c).claimed_by_id == staff_id(app, "ben@clinic.example") for c in taken)


def test_next_opens_the_request_i_am_still_working_on(app, coordinator):
    first = add_request(app, created_at=ago(hours=2))
    second = add_request(app, created_at=ago(hours=1))
    follow(coordinator, coordinator.post("/staff/next"))
    response = coordinator.post("/staff/next")
    assert response.headers["Location"] == f"/staff/callbacks/{first}"
    doc = follow(coordinator, response)
    assert flashes(doc) == [f"Note: You are still working on request #{first}: finish it or release it first."]
    assert "You are working on this request." in doc.one("section", class_="work").text
    assert get_request(app, second).claimed_by_id is None  # no second claim taken
    assert [e.callback_id for e in audit_rows(app, "claim")] == [first]
    # Once it is finished, Next moves on.
    coordinator.post(f"/staff/callbacks/{first}/attempts", {"outcome": "booked"})
    assert coordinator.post("/staff/next").headers["Location"] == f"/staff/callbacks/{second}"
    assert [e.callback_id for e in audit_rows(app, "claim")] == [first, second]


# ---- Claim and Release -----------------------------------------------------------------------------
def test_claim_and_release(app, coordinator):
    callback_id = add_request(app)
    doc = coordinator.page(f"/staff/callbacks/{callback_id}")
    assert "Nobody is working on this request yet." in doc.one("section", class_="work").text
    doc = follow(coordinator, coordinator.post(f"/staff/callbacks/{callback_id}/claim"))
    assert flashes(doc) == [f"Done: Request #{callback_id} is yours now. Others can see you are working on it."]
    work = doc.one("section", class_="work")
    assert [b.text for b in work.find_all("button")] == ["Release it back to the queue", "Save this call"]
    rows = {r["Request"].split()[0]: r for r in _queue_rows(coordinator)}
    assert rows[f"#{callback_id}"]["Who has it"] == "You"

    doc = follow(coordinator, coordinator.post(f"/staff/callbacks/{callback_id}/release"))
    assert flashes(doc) == [f"Done: Request #{callback_id} is back in the queue for anyone to take."]
    item = get_request(app, callback_id)
    assert (item.claimed_by_id, item.claimed_at) == (None, None)
    # Looking at my own item renews the claim (and says so in the log).
    assert [e.action for e in audit_rows(app) if e.callback_id == callback_id] == [
        "view_callback", "claim", "view_callback", "release"]  # opening it again renews silently


def test_someone_elses_claim_is_explained_and_left_alone(app, coordinator, colleague):
    callback_id = add_request(app)
    colleague.post(f"/staff/callbacks/{callback_id}/claim")
    ben = staff_id(app, "ben@clinic.example")
    for action, data in (("claim", {}), ("release", {}), ("attempts", {"outcome": "booked"})):
        response = coordinator.post(f"/staff/callbacks/{callback_id}/{action}", data)
        assert response.headers["Location"] == f"/staff/callbacks/{callback_id}", action
        doc = html(coordinator.get(response.headers["Location"]))
        [message] = flashes(doc)
        assert message == "Not done: Ben Carter is working on this request right now.", action
        assert doc.one("div", class_="flash").get("role") == "alert"
        assert get_request(app, callback_id).claimed_by_id == ben
    assert attempts(app, callback_id) == []
    assert [e.actor for e in audit_rows(app, "claim")] == ["ben@clinic.example"]


def test_an_admin_can_release_anyones_claim(app, colleague, admin):
    callback_id = add_request(app)
    colleague.post(f"/staff/callbacks/{callback_id}/claim")
    doc = admin.page(f"/staff/callbacks/{callback_id}")
    assert "Release Ben Carter's claim" in [b.text for b in doc.find_all("button")]
    admin.post(f"/staff/callbacks/{callback_id}/release")
    assert get_request(app, callback_id).claimed_by_id is None


def test_acting_on_a_request_that_does_not_exist(coordinator):
    response = coordinator.post("/staff/callbacks/999999/claim")
    assert response.headers["Location"] == "/staff/"
    assert flashes(html(coordinator.get("/staff/"))) == ["Not done: There is no callback request #999999."]


# ---- who sees the number ------------------------------------------------------------------------
def _contact(doc):
    return doc.one("section", **{"aria-labelledby": "contact-h"})


def test_an_open_request_shows_its_number_only_to_whoever_holds_it(app, coordinator, colleague):
    """Opening a request claims nothing, so it shows nothing to call: the last four digits, who
    holds it, and Claim and call."""
    callback_id = add_request(app, phone="+16175550142")
    doc = coordinator.page(f"/staff/callbacks/{callback_id}")
    body = coordinator.last.get_data(as_text=True)
    assert "5550142" not in body and "555-0142" not in body and "tel:" not in body
    assert doc.find("form", id="log-attempt") is None
    contact = _contact(doc)
    assert contact.one("p", id="masked-number").text == "•••-•••-0142phone ending in 0142"
    claim = contact.one("form", action=f"/staff/callbacks/{callback_id}/claim")
    assert claim.one("button").text == "Claim and call"
    assert get_request(app, callback_id).claimed_by_id is None  # looking took nothing

    follow(coordinator, coordinator.post(f"/staff/callbacks/{callback_id}/claim"))
    doc = coordinator.page(f"/staff/callbacks/{callback_id}")
    link = _contact(doc).one("p", class_="phone-big").one("a")
    assert (link.text, link.get("href")) == ("(617) 555-0142", "tel:+16175550142")
    assert doc.find("form", id="log-attempt") is not None
    assert _contact(doc).find("button") is None

    # The colleague who opens it now sees who has it, and still no number to call.
    doc = colleague.page(f"/staff/callbacks/{callback_id}")
    body = colleague.last.get_data(as_text=True)
    assert "5550142" not in body and "555-0142" not in body and "tel:" not in body
    assert _contact(doc).one("p", id="held-by").text.startswith("Ana Ortiz is working on this request right now.")
    assert _contact(doc).find("button") is None and doc.find("form", id="log-attempt") is None
    [claim] = audit_rows(app, "claim")
    assert claim.actor == "ana@clinic.example"


def test_a_closed_request_still_shows_its_number(app, coordinator):
    callback_id = add_request(app, phone="+16175550143", status="closed", outcome="booked", closed_at=ago(hours=1))
    link = _contact(coordinator.page(f"/staff/callbacks/{callback_id}")).one("p", class_="phone-big").one("a")
    assert (link.text, link.get("href")) == ("(617) 555-0143", "tel:+16175550143")


def test_saving_a_call_without_the_claim_is_refused(app, coordinator):
    """A page opened before the fix, or a hand-made POST: nobody holds it, so nothing is saved."""
    callback_id = add_request(app)
    doc = follow(coordinator, coordinator.post(f"/staff/callbacks/{callback_id}/attempts", {"outcome": "booked"}))
    assert flashes(doc) == ["Not done: Not saved: claim this request before you call, so nobody else calls them "
                            "at the same time. Nobody is working on it now."]
    item = get_request(app, callback_id)
    assert (item.status, item.attempts, item.claimed_by_id) == ("open", 0, None)
    assert attempts(app, callback_id) == [] and audit_rows(app, "attempt") == []


# ---- attempts ----------------------------------------------------------------------------------------
def test_the_attempt_form_offers_every_outcome_in_a_labelled_group(app, coordinator):
    callback_id = add_request(app)
    follow(coordinator, coordinator.post(f"/staff/callbacks/{callback_id}/claim"))
    form = coordinator.page(f"/staff/callbacks/{callback_id}").one("form", id="log-attempt")
    fieldset = form.one("fieldset")
    assert fieldset.one("legend").text == "How did the call go?"
    radios = fieldset.find_all("input", type="radio")
    assert [r.get("value") for r in radios] == list(OUTCOMES)
    assert [fieldset.one("label", **{"for": r.get("id")}).text for r in radios] == [o.label for o in OUTCOMES.values()]
    # Each choice says what it does to the request, read out with it.
    effects = {r.get("value"): fieldset.one("span", id=r.get("aria-describedby")).text for r in radios}
    assert effects == {"booked": "closes the request", "call_back_later": "back to the queue, not counted as a try",
                       "not_interested": "closes the request", "left_voicemail": "back to the queue",
                       "no_answer": "back to the queue", "wrong_number": "closes the request"}
    assert fieldset.one("label", **{"for": "outcome-1"}).text == "Reached – asked us to call back later"
    assert form.one("label", **{"for": "note"}).text == "Note about this call (optional)"


def test_reaching_them_closes_the_request(app, coordinator):
    callback_id = add_request(app)
    follow(coordinator, coordinator.post(f"/staff/callbacks/{callback_id}/claim"))
    response = coordinator.post(f"/staff/callbacks/{callback_id}/attempts",
                                {"outcome": "booked", "note": "Tue 10 am with Dr. Shah"})
    doc = follow(coordinator, response)
    assert flashes(doc) == [f"Done: Saved: Reached – consultation booked. Request #{callback_id} is closed."]
    item = get_request(app, callback_id)
    assert (item.status, item.outcome, item.attempts, item.claimed_by_id) == ("closed", "booked", 1, None)
    [attempt] = attempts(app, callback_id)
    assert (attempt.outcome, attempt.note) == ("booked", "Tue 10 am with Dr. Shah")
    doc = coordinator.page(f"/staff/callbacks/{callback_id}")
    work = doc.one("section", class_="work")
    assert "Closed" in work.text and "by Ana Ortiz: Reached – consultation booked." in work.text
    assert work.find("form", id="log-attempt") is None
    tries = doc.one("section", **{"aria-labelledby": "attempts-h"}).text
    assert "Ana Ortiz" in tries and "Reached – consultation booked" in tries and "Tue 10 am with Dr. Shah" in tries
    assert ids_in_queue(coordinator) == []


def test_unreachable_after_max_attempts(app, coordinator, clock):
    callback_id = add_request(app)
    again = f" Next offers it again after {clinic_time(app, clock.now + dt.timedelta(minutes=60))}."
    messages = []
    for outcome in ("no_answer", "left_voicemail", "no_answer"):
        follow(coordinator, coordinator.post(f"/staff/callbacks/{callback_id}/claim"))
        doc = follow(coordinator, coordinator.post(f"/staff/callbacks/{callback_id}/attempts", {"outcome": outcome}))
        messages += flashes(doc)
    assert messages == [
        f"Done: Saved: No answer. Request #{callback_id} is back in the queue (1 of 3 tries without reaching them)."
        + again,
        f"Done: Saved: Left voicemail. Request #{callback_id} is back in the queue "
        "(2 of 3 tries without reaching them)." + again,
        f"Done: Saved: No answer. That was try 3 without reaching them, so request #{callback_id} "
        "is now closed as unreachable.",
    ]
    item = get_request(app, callback_id)
    assert (item.status, item.outcome, item.attempts) == ("closed", "unreachable", 3)
    assert [a.outcome for a in attempts(app, callback_id)] == ["no_answer", "left_voicemail", "no_answer"]
    rows = [r for r in _queue_rows(coordinator, "?status=closed") if r["Request"].startswith(f"#{callback_id} ")]
    assert rows[0]["Outcome"] == "Closed Unreachable"


def test_a_caller_who_asked_to_be_called_later_stays_in_the_queue(make_app, clock):
    """Reached, and asked for a later call: still open, and not a try toward unreachable."""
    app = make_app(MAX_ATTEMPTS="1")
    again = clinic_time(app, clock.now + dt.timedelta(minutes=60))
    add_staff(app, "ana@clinic.example", "Ana Ortiz")
    browser = StaffClient(app).signed_in_as("ana@clinic.example")
    callback_id = add_request(app)
    for _ in range(2):
        follow(browser, browser.post(f"/staff/callbacks/{callback_id}/claim"))
        doc = follow(browser, browser.post(f"/staff/callbacks/{callback_id}/attempts",
                                           {"outcome": "call_back_later", "note": "after 6 pm"}))
        assert flashes(doc) == [f"Done: Saved: Reached – asked us to call back later. Request #{callback_id} is "
                                "back in the queue; they were reached, so this call does not count toward "
                                f"closing it as unreachable. Next offers it again after {again}."]
    item = get_request(app, callback_id)
    assert (item.status, item.outcome, item.closed_at, item.attempts, item.unsuccessful_attempts,
            item.claimed_by_id) == ("open", None, None, 2, 0, None)
    assert [a.outcome for a in attempts(app, callback_id)] == ["call_back_later", "call_back_later"]
    assert ids_in_queue(browser) == [f"#{callback_id}"]
    tries = browser.page(f"/staff/callbacks/{callback_id}").one("section", **{"aria-labelledby": "attempts-h"})
    assert tries.text.count("Reached – asked us to call back later") == 2


def test_saving_the_same_page_twice_counts_one_attempt(app, coordinator):
    callback_id = add_request(app)
    follow(coordinator, coordinator.post(f"/staff/callbacks/{callback_id}/claim"))
    form = coordinator.page(f"/staff/callbacks/{callback_id}").one("form", id="log-attempt")
    seen = form.one("input", name="attempts_seen").get("value")
    assert seen == "0"
    data = {"outcome": "no_answer", "attempts_seen": seen}
    follow(coordinator, coordinator.post(f"/staff/callbacks/{callback_id}/attempts", data))
    doc = follow(coordinator, coordinator.post(f"/staff/callbacks/{callback_id}/attempts", data))  # the double click
    assert flashes(doc)[0].startswith("Not done: Not saved: a call on this request was saved after this page")
    assert [a.outcome for a in attempts(app, callback_id)] == ["no_answer"]
    item = get_request(app, callback_id)
    assert (item.attempts, item.unsuccessful_attempts, item.claimed_by_id) == (1, 1, None)
    # The page now shows one attempt: its form saves the next call.
    follow(coordinator, coordinator.post(f"/staff/callbacks/{callback_id}/claim"))
    seen = coordinator.page(f"/staff/callbacks/{callback_id}").one("input", name="attempts_seen").get("value")
    follow(coordinator, coordinator.post(f"/staff/callbacks/{callback_id}/attempts",
                                         {"outcome": "no_answer", "attempts_seen": seen}))
    assert get_request(app, callback_id).attempts == 2


def test_a_save_from_a_page_opened_before_the_caller_asked_again_is_shown_again(app, coordinator):
    """The coordinator calls from the page; meanwhile the caller phones the line and asks
    again (new answers, evenings). "Not interested" from the old page would close the renewed
    request unread: it is refused, the page shows the newest answers with the coordinator's
    choice and note kept, and saving that page saves the call."""
    from voiceline.queue import intake

    callback_id = add_request(app, unsuccessful_attempts=2, attempts=2)
    follow(coordinator, coordinator.post(f"/staff/callbacks/{callback_id}/claim"))
    form = coordinator.page(f"/staff/callbacks/{callback_id}").one("form", id="log-attempt")
    seen = {name: form.one("input", name=name).get("value") for name in ("attempts_seen", "call_seen")}
    assert seen["call_seen"] == get_request(app, callback_id).call_sid
    with app.app_context():
        intake.add_or_merge(db.session, intake.Intake(
            phone=get_request(app, callback_id).phone, language="en", reason="insurance", call_sid="CA" + "7" * 32,
            prompts_version="test", requested_by_caller=True, preferred_window="evening"))
        db.session.commit()
    response = coordinator.post(f"/staff/callbacks/{callback_id}/attempts",
                                {"outcome": "not_interested", "note": "said no thanks", **seen})
    assert response.status_code == 409
    doc = html(response)
    assert flashes(doc) == ["Not done: Not saved yet: the caller phoned the line and asked again for a call after "
                            "you opened this page. Their newest answers are below. If your call still stands, "
                            "save it again."]
    form = doc.one("form", id="log-attempt")
    assert [i.get("value") for i in form.find_all("input", name="outcome") if "checked" in i.attrs] == [
        "not_interested"]
    assert form.one("textarea", name="note").text == "said no thanks"
    assert form.one("input", name="call_seen").get("value") == "CA" + "7" * 32
    item = get_request(app, callback_id)
    assert (item.status, item.attempts, item.unsuccessful_attempts, item.preferred_window) == ("open", 2, 0, "evening")
    assert attempts(app, callback_id) == []
    resend = {name: form.one("input", name=name).get("value") for name in ("attempts_seen", "call_seen")}
    follow(coordinator, coordinator.post(f"/staff/callbacks/{callback_id}/attempts",
                                         {"outcome": "not_interested", "note": "said no thanks", **resend}))
    item = get_request(app, callback_id)
    assert (item.status, item.outcome, item.attempts) == ("closed", "not_interested", 3)


def test_max_attempts_comes_from_config(make_app):
    app = make_app(MAX_ATTEMPTS="1")
    add_staff(app, "ana@clinic.example", "Ana Ortiz")
    browser = StaffClient(app).signed_in_as("ana@clinic.example")
    callback_id = add_request(app)
    follow(browser, browser.post(f"/staff/callbacks/{callback_id}/claim"))
    browser.post(f"/staff/callbacks/{callback_id}/attempts", {"outcome": "no_answer"})
    assert get_request(app, callback_id).outcome == "unreachable"


def test_attempt_without_an_outcome_is_shown_again_with_the_note_kept(app, coordinator):
    callback_id = add_request(app)
    follow(coordinator, coordinator.post(f"/staff/callbacks/{callback_id}/claim"))
    response = coordinator.post(f"/staff/callbacks/{callback_id}/attempts", {"note": "Line was busy <3"})
    assert response.status_code == 400
    doc = html(response)
    assert flashes(doc) == ["Not done: The call was not saved yet: Choose how the call went."]
    form = doc.one("form", id="log-attempt")
    assert form.one("p", class_="error-message").text == "Error: Choose how the call went."
    assert form.one("fieldset").get("aria-describedby") == "outcome-error"
    assert form.one("textarea", name="note").text == "Line was busy <3"
    assert attempts(app, callback_id) == []
    response = coordinator.post(f"/staff/callbacks/{callback_id}/attempts", {"outcome": "gone_fishing"})
    assert response.status_code == 400 and attempts(app, callback_id) == []


def test_attempt_on_a_closed_request(app, coordinator):
    callback_id = add_request(app, status="closed", outcome="booked", closed_at=ago(hours=1))
    doc = follow(coordinator, coordinator.post(f"/staff/callbacks/{callback_id}/attempts", {"outcome": "no_answer"}))
    assert flashes(doc) == ["Not done: This request is already closed."]
    assert attempts(app, callback_id) == []


# ---- notes -----------------------------------------------------------------------------------------------
def test_notes(app, coordinator, colleague):
    callback_id = add_request(app)
    doc = follow(colleague, colleague.post(f"/staff/callbacks/{callback_id}/notes",
                                           {"text": "Prefers Spanish.\nCall after 4 pm."}))
    assert flashes(doc) == ["Done: Note added."]
    notes = coordinator.page(f"/staff/callbacks/{callback_id}").one("section", id="notes")
    [entry] = notes.one("ol").find_all("li")
    assert "Ben Carter" in entry.one("p", class_="timeline-meta").text
    assert entry.one("p", class_="note-text").text == "Prefers Spanish. Call after 4 pm."
    with colleague.app.app_context():
        [note] = db.session.scalars(sa.select(CallbackNote)).all()
        assert note.text == "Prefers Spanish.\nCall after 4 pm."
    [audit] = audit_rows(app, "note")
    assert (audit.callback_id, audit.actor) == (callback_id, "ben@clinic.example")


def test_an_empty_note_is_refused(app, coordinator):
    callback_id = add_request(app)
    response = coordinator.post(f"/staff/callbacks/{callback_id}/notes", {"text": ""})
    assert response.status_code == 400
    assert flashes(html(response)) == ["Not done: The note was not added: Write the note first."]
    notes = html(response).one("section", id="notes")
    assert notes.one("p", class_="error-message").text == "Error: Write the note first."
    response = coordinator.post(f"/staff/callbacks/{callback_id}/notes", {"text": "   "})
    assert flashes(follow(coordinator, response)) == ["Not done: A note cannot be empty."]
    assert audit_rows(app, "note") == []


# ---- reopen --------------------------------------------------------------------------------------------
def test_admin_reopens_a_closed_request(app, coordinator, admin):
    callback_id = add_request(app, status="closed", outcome="not_interested", closed_at=ago(hours=1),
                              attempts=1)
    assert "Reopen this request" not in coordinator.page(f"/staff/callbacks/{callback_id}").text
    assert coordinator.post(f"/staff/callbacks/{callback_id}/reopen").status_code == 403
    assert get_request(app, callback_id).status == "closed"

    assert "Reopen this request" in admin.page(f"/staff/callbacks/{callback_id}").text
    doc = follow(admin, admin.post(f"/staff/callbacks/{callback_id}/reopen"))
    assert flashes(doc) == [f"Done: Request #{callback_id} is open again and back in the queue, "
                            "with a fresh count of tries."]
    item = get_request(app, callback_id)
    assert (item.status, item.outcome, item.unsuccessful_attempts) == ("open", None, 0)
    [entry] = audit_rows(app, "reopen")
    assert entry.detail == {"was": "not_interested"}


def test_reopen_refused_while_the_phone_has_another_open_request(app, admin):
    closed = add_request(app, phone="+16175550150", status="closed", outcome="booked", closed_at=ago(hours=2))
    open_now = add_request(app, phone="+16175550150")
    doc = follow(admin, admin.post(f"/staff/callbacks/{closed}/reopen"))
    assert flashes(doc) == [f"Not done: This phone already has an open request (#{open_now}); work that one instead."]
    assert get_request(app, closed).status == "closed"


# ---- the retry delay ------------------------------------------------------------------------------------
def test_next_waits_an_hour_after_a_call_but_the_queue_still_lists_it(app, coordinator, clock):
    """After no answer (or a voicemail, or "call back later") Next leaves the caller alone for
    RETRY_AFTER_MINUTES; the queue lists them, marked; by hand they can still be claimed."""
    first = add_request(app, created_at=ago(hours=3))
    second = add_request(app, created_at=ago(hours=2))
    called_at = clock.now
    again = clinic_time(app, called_at + dt.timedelta(minutes=60))
    for expected in (first, second):
        assert coordinator.post("/staff/next").headers["Location"] == f"/staff/callbacks/{expected}"
        coordinator.get(f"/staff/callbacks/{expected}")
        doc = follow(coordinator, coordinator.post(f"/staff/callbacks/{expected}/attempts", {"outcome": "no_answer"}))
        due = clinic_time(app, clock.now + dt.timedelta(minutes=60))
        assert flashes(doc)[0].endswith(f"Next offers it again after {due}.")
        assert get_request(app, expected).last_attempt_at == clock.now
        clock.now += dt.timedelta(minutes=5)

    doc = follow(coordinator, coordinator.post("/staff/next"))
    assert flashes(doc) == [f"Note: Nothing to call yet. Of the 2 open requests: 2 tried in the last 60 minutes. "
                            f"Next offers one again after {again}; you can still open one and claim it."]
    assert all(get_request(app, c).claimed_by_id is None for c in (first, second))
    rows = {r["Request"].split()[0]: r for r in table_rows(doc, "queue-table")}
    assert f"Try again after {again}" in rows[f"#{first}"]["Waiting"]
    later = clinic_time(app, called_at + dt.timedelta(minutes=65))
    assert f"Try again after {later}" in rows[f"#{second}"]["Waiting"]
    tag = doc.one("table", class_="queue-table").find_all("span", class_="tag-retry")[0]
    assert tag.one("time").get("datetime") == (called_at + dt.timedelta(minutes=60)).isoformat()

    # By hand it can still be claimed and called.
    doc = follow(coordinator, coordinator.post(f"/staff/callbacks/{second}/claim"))
    assert doc.one("p", id="retry-at").text.endswith(f"Next skips it until {later}. You can still claim it and call now.")
    assert doc.find("form", id="log-attempt") is not None
    coordinator.post(f"/staff/callbacks/{second}/release")

    clock.now = called_at + dt.timedelta(minutes=60)  # the first is due again; the second not yet
    assert coordinator.post("/staff/next").headers["Location"] == f"/staff/callbacks/{first}"
    rows = {r["Request"].split()[0]: r for r in _queue_rows(coordinator)}
    assert "Try again" not in rows[f"#{first}"]["Waiting"] and "Try again" in rows[f"#{second}"]["Waiting"]
