"""The staff UI in a real browser: Playwright for Python driving Debian's Chromium.

What a coordinator does on a shift, end to end: a caller leaves a callback request through
the voice line (a real call, via tests/phone.py), the coordinator signs in, sees it in the
queue, presses Next, reads the caller's answers, calls, logs how it went, sees it closed and
signs out; an admin then finds that work in the audit log. A wrong password is turned away.

The browser is /usr/bin/chromium (`apt-get install -y chromium`), launched through
`executable_path`: `playwright install` is never needed and never run. Without it these
tests skip and say why; with VOICELINE_REQUIRE_BROWSER=1 (set by .ci/run) they fail instead.

Locators are the ones a screen reader user would go by (roles, accessible names, labels),
so a page that loses its labels fails here. No sleeps: Playwright's expectations wait.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from werkzeug.serving import make_server

from tests import factories
from tests.phone import SATURDAY_EVENING, Phone
from voiceline.extensions import db
from voiceline.models import AuditEntry, CallbackAttempt, CallbackRequest, StaffUser

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]
TIMEOUT_MS = 15_000  # generous: the machine is shared with load tests; expectations return as soon as they hold
TABLET = {"width": 820, "height": 1180}  # an iPad Air in portrait, as at the front desk

COORDINATOR = ("casey@clinic.example", "Casey Coordinator")
ADMIN = ("dana@clinic.example", "Dana Admin")
CALLER = "+16175550188"
CALLER_DISPLAY = "(617) 555-0188"
OUTCOME = "Reached – consultation booked"
NOTE = "Booked a consultation for Tuesday 10am; sent the intake forms."

# The five prescreen questions as the caller heard them, and the keys the call pressed
# (1 = yes, 2 = no), mixed so that a shifted or swapped answer shows.
PROMPTS = yaml.safe_load((Path(__file__).resolve().parent.parent / "prompts" / "en.yaml").read_text())
QUESTIONS = [" ".join(PROMPTS["texts"]["prescreen"][key].split())  # read here, not through the app
             for key in ("age", "diagnosis", "medications", "care", "history")]
KEYS = ("1", "2", "1", "2", "2")
ANSWERS = ["Yes", "No", "Yes", "No", "No"]
SUMMARY = ("18+ yes · mood diagnosis no · 2+ antidepressants yes · in care no · "
           "psychosis/high blood pressure/pregnancy no")


# ---- the browser --------------------------------------------------------------------------------
def _unavailable(reason: str):
    if os.environ.get("VOICELINE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"VOICELINE_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium per test session (per xdist worker), closed at the end."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        _unavailable("browser tests need the playwright package (pip install -e '.[test]')")
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    except Error as exc:
        playwright.stop()
        _unavailable(f"Chromium at {CHROMIUM} did not start: {exc}")
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture(scope="session")
def expect(chromium):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    return expect


class LiveServer:
    """The app served over real HTTP on 127.0.0.1 (a free port) from a background thread."""

    def __init__(self, app):
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="browser-test-server", daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def app(make_app):
    # VOICELINE_ENV=development: outside development the staff cookies are Secure, and this
    # server speaks plain http on 127.0.0.1, where a browser would not send them back.
    # Patient services is closed (a Saturday evening), so a call ends as a callback request.
    app = make_app(VOICELINE_ENV="development", BUSINESS_HOURS="Mon-Fri 08:00-18:00")
    app.extensions["voiceline.clock"] = lambda: SATURDAY_EVENING
    assert app.config["SESSION_COOKIE_SECURE"] is False
    return app


@pytest.fixture
def live(app):
    server = LiveServer(app)
    yield server
    server.stop()


@pytest.fixture
def new_page(chromium, live):
    """new_page(viewport=...) -> a page in a fresh browser context (its own cookies), with
    base_url at the live server; every context is closed before the server stops."""
    contexts = []

    def factory(viewport=None):
        context = chromium.new_context(base_url=live.url, viewport=viewport or {"width": 1280, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield factory
    for context in contexts:
        context.close()


# ---- data, made the real way ---------------------------------------------------------------------
def caller_leaves_a_request(app) -> int:
    """A call through the voice line while patient services is closed: English, new patient,
    the five prescreen answers, then this number, afternoons, no clinic name on voicemail,
    no message. Returns the callback request it left."""
    phone = Phone(app, from_number=CALLER)
    phone.call()
    phone.press_through("1", "1", *KEYS)
    phone.press_through("1", "2", "2", "2")
    phone.hang_up()
    with app.app_context():
        [item] = db.session.scalars(sa.select(CallbackRequest)).all()
        assert (item.phone, item.status, item.reason, item.preferred_window) == (
            CALLER, "open", "candidacy", "afternoon")
        assert item.answers == {"age_18_or_older": "yes", "mood_disorder_diagnosis": "no",
                                "tried_two_antidepressants": "yes", "under_care_now": "no",
                                "psychosis_blood_pressure_or_pregnancy": "no"}
        assert item.call_sid == phone.call_sid and item.requested_by_caller
        return item.id


def audit_for(app, callback_id: int) -> list[AuditEntry]:
    with app.app_context():
        rows = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.callback_id == callback_id)
                                  .order_by(AuditEntry.id)).all()
        db.session.expunge_all()
        return rows


# ---- page helpers --------------------------------------------------------------------------------
def sign_in(page, email: str, password: str = factories.PASSWORD):
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def flash(page):
    """The confirmation message at the top of the page (role=status)."""
    return page.get_by_role("status").filter(has_text="Done:")


def queue_row(page, callback_id: int):
    """The queue's row for one request, found by its link's accessible name: the masked
    number is hidden from screen readers, which hear "phone ending in 0188" instead."""
    link = page.get_by_role("link", name=f"#{callback_id} phone ending in {CALLER[-4:]}", exact=True)
    return page.get_by_role("row").filter(has=link)


def no_horizontal_overflow(page) -> None:
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"{page.url}: the page scrolls sideways ({widths[0]}px wide in {widths[1]}px)"


def tab_to(page, locator, limit: int = 40) -> None:
    """Press Tab until `locator` has the keyboard focus (fails if it never gets it)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if locator.evaluate("el => el === document.activeElement"):
            return
    raise AssertionError(f"Tab never reached {locator}")


# ---- the tests -----------------------------------------------------------------------------------
def test_a_coordinator_works_a_callback_from_the_queue_to_closed(new_page, expect, app, tmp_path):
    callback_id = caller_leaves_a_request(app)
    coordinator = factories.staff(app, COORDINATOR[0], name=COORDINATOR[1])
    page = new_page(viewport=TABLET)

    # Signed out, the queue sends you to sign in, and back to the queue afterwards.
    page.goto("/staff/")
    page.wait_for_url(re.compile(r"/staff/sign-in\?next=(/|%2F)staff(/|%2F)$"))
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Please sign in to continue.")
    sign_in(page, COORDINATOR[0])
    page.wait_for_url(re.compile(r"/staff/$"))
    expect(flash(page)).to_contain_text(f"Signed in. Welcome, {COORDINATOR[1]}.")

    # The queue: the request, its number masked, the reason and what the caller answered.
    expect(page.get_by_role("heading", name="Callback queue", level=1)).to_be_visible()
    expect(page.get_by_text("1 open request.")).to_be_visible()
    row = queue_row(page, callback_id)
    expect(row).to_have_count(1)
    expect(row.get_by_role("rowheader")).to_contain_text(f"#{callback_id} •••-•••-0188")  # as sighted staff see it
    cells = row.get_by_role("cell")
    expect(cells).to_have_text(["New patient (candidacy)", "English", "Afternoon", SUMMARY,
                                re.compile(r"\bmin\b"), "0", "Nobody yet"])
    expect(page.locator("main")).not_to_contain_text(CALLER_DISPLAY)  # the full number only on the request
    assert CALLER not in page.content() and "555-0188" not in page.content()
    no_horizontal_overflow(page)
    page.screenshot(path=tmp_path / "queue-tablet.png", full_page=True)

    # Keyboard only: Tab reaches Next, it shows a focus outline, Enter presses it.
    next_button = page.get_by_role("button", name="Next request")
    tab_to(page, next_button)
    expect(next_button).to_be_focused()
    outline = next_button.evaluate(
        "el => { const s = getComputedStyle(el); return [s.outlineStyle, parseFloat(s.outlineWidth)]; }")
    assert outline[0] != "none" and outline[1] >= 2, f"no visible focus outline on Next: {outline}"
    page.keyboard.press("Enter")

    # The request, claimed for me: full number, the caller's answers, question by question.
    page.wait_for_url(re.compile(rf"/staff/callbacks/{callback_id}$"))
    expect(flash(page)).to_contain_text(f"Request #{callback_id} is yours now.")
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(rf"Callback request #{callback_id}\s+Open"))
    who = page.get_by_role("region", name="Who to call")
    expect(who.get_by_role("link", name=CALLER_DISPLAY)).to_have_attribute("href", f"tel:{CALLER}")
    told = page.get_by_role("region", name="What they told the line")
    expect(told.get_by_role("term")).to_have_text(QUESTIONS)
    expect(told.get_by_role("definition")).to_have_text(ANSWERS)
    work = page.get_by_role("region", name="Work on this request")
    expect(work).to_contain_text("You are working on this request.")
    no_horizontal_overflow(page)
    page.screenshot(path=tmp_path / "detail-tablet.png", full_page=True)

    # The call went well: log it.
    work.get_by_role("radio", name=OUTCOME).check()
    work.get_by_label("Note about this call (optional)").fill(NOTE)
    work.get_by_role("button", name="Save this call").click()
    page.wait_for_url(re.compile(r"/staff/$"))
    expect(flash(page)).to_have_text(f"Done: Saved: {OUTCOME}. Request #{callback_id} is closed.")

    # Gone from the open queue ...
    expect(page.get_by_role("heading", name="Nothing waiting")).to_be_visible()
    expect(queue_row(page, callback_id)).to_have_count(0)
    # ... and in the closed list, with its outcome.
    page.get_by_label("Show").select_option(label="Closed")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url(re.compile(r"/staff/\?status=closed"))
    row = queue_row(page, callback_id)
    expect(row).to_have_count(1)
    expect(row.get_by_role("cell").last).to_have_text(f"Closed {OUTCOME}")
    no_horizontal_overflow(page)

    # Opened again: closed, by whom and how, with the note.
    row.get_by_role("link").click()
    page.wait_for_url(re.compile(rf"/staff/callbacks/{callback_id}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(rf"Callback request #{callback_id}\s+Closed"))
    expect(page.get_by_role("region", name="Work on this request")).to_contain_text(
        re.compile(rf"Closed .* by {COORDINATOR[1]}: {OUTCOME}\."))
    expect(page.get_by_role("radio", name=OUTCOME)).to_have_count(0)  # nothing left to log
    attempts = page.get_by_role("region", name="Call attempts").get_by_role("listitem")
    expect(attempts).to_have_count(1)
    expect(attempts).to_contain_text([re.compile(rf"{COORDINATOR[1]}, .*{OUTCOME}\s+{re.escape(NOTE)}", re.S)])

    # Sign out: the sign-in page says so, and the queue is closed to this browser again.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/staff/sign-in$"))
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    expect(flash(page)).to_have_text("Done: You are signed out.")
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    page.goto("/staff/")
    page.wait_for_url(re.compile(r"/staff/sign-in\?next="))

    # What was stored.
    with app.app_context():
        item = db.session.get(CallbackRequest, callback_id)
        assert (item.status, item.outcome, item.closed_by_id, item.attempts, item.claimed_by_id) == (
            "closed", "booked", coordinator.id, 1, None)
        [attempt] = db.session.scalars(sa.select(CallbackAttempt)).all()
        assert (attempt.callback_id, attempt.staff_id, attempt.outcome, attempt.note) == (
            callback_id, coordinator.id, "booked", NOTE)
    actions = [(e.actor, e.action) for e in audit_for(app, callback_id)]
    assert actions[0] == (COORDINATOR[0], "claim") and actions[-1] == (COORDINATOR[0], "view_callback")
    assert {(COORDINATOR[0], "view_callback"), (COORDINATOR[0], "attempt")} <= set(actions)
    assert (tmp_path / "queue-tablet.png").stat().st_size > 10_000
    assert (tmp_path / "detail-tablet.png").stat().st_size > 10_000


def test_a_wrong_password_is_turned_away(new_page, expect, app):
    factories.staff(app, COORDINATOR[0], name=COORDINATOR[1])
    page = new_page()
    page.goto("/staff/sign-in")
    sign_in(page, COORDINATOR[0], password="not the password")

    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("You are not signed in")
    expect(alert).to_contain_text(re.compile(r"\S+.*password", re.I))
    expect(page.get_by_label("Email")).to_have_value(COORDINATOR[0])  # kept: only the password to retype
    expect(page.get_by_label("Password")).to_have_value("")
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)

    page.goto("/staff/")  # no session was granted
    page.wait_for_url(re.compile(r"/staff/sign-in\?next="))
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    with app.app_context():
        actions = db.session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["sign_in_failed"]


def test_an_admin_sees_the_coordinators_work_in_the_audit_log(new_page, expect, app):
    callback_id = caller_leaves_a_request(app)
    factories.staff(app, COORDINATOR[0], name=COORDINATOR[1])
    factories.staff(app, ADMIN[0], name=ADMIN[1], role="admin")

    # The coordinator's shift, in one browser: Next, call, log it, sign out.
    page = new_page()
    page.goto("/staff/sign-in")
    sign_in(page, COORDINATOR[0])
    page.get_by_role("button", name="Next request").click()
    page.wait_for_url(re.compile(rf"/staff/callbacks/{callback_id}$"))
    page.get_by_role("radio", name=OUTCOME).check()
    page.get_by_role("button", name="Save this call").click()
    expect(flash(page)).to_contain_text(f"Request #{callback_id} is closed.")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/staff/sign-in$"))

    # The admin, in another.
    page = new_page()
    page.goto("/staff/sign-in")
    sign_in(page, ADMIN[0])
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit log").click()
    page.wait_for_url(re.compile(r"/staff/admin/audit$"))
    expect(page.get_by_role("heading", name="Audit log", level=1)).to_be_visible()

    rows = page.get_by_role("row").filter(has=page.get_by_role("link", name=f"#{callback_id}", exact=True))
    stored = audit_for(app, callback_id)
    expect(rows).to_have_count(len(stored))
    mine = rows.filter(has_text=COORDINATOR[0])
    expect(mine).to_have_count(len(stored))  # everything done to this request was the coordinator's
    expect(mine.filter(has_text="Logged a call attempt")).to_have_count(1)
    expect(mine.filter(has_text="Logged a call attempt")).to_contain_text(
        "outcome: Reached – consultation booked; closed as: Reached – consultation booked")
    expect(mine.filter(has_text="Viewed a request")).to_have_count(1)
    expect(mine.filter(has_text="Claimed a request").filter(has_text="via: next")).to_have_count(1)
    # Newest first: the attempt on top, the claim by Next at the bottom.
    expect(mine.first).to_contain_text("Logged a call attempt")
    expect(mine.last.get_by_role("cell")).to_contain_text(["Claimed a request", "via: next"])

    assert [e.action for e in stored][0] == "claim" and stored[-1].action == "attempt"
    assert {e.action for e in stored} == {"claim", "view_callback", "attempt"}
    with app.app_context():
        assert db.session.scalar(sa.select(AuditEntry.actor).where(AuditEntry.action == "view_audit")) == ADMIN[0]


def test_two_coordinators_opening_one_request_cannot_both_call(new_page, expect, app):
    """Opened from the queue, a request shows no number to call until it is claimed; once a
    colleague holds it, nobody else sees the number, a tel: link or the form to log a call."""
    callback_id = caller_leaves_a_request(app)
    factories.staff(app, COORDINATOR[0], name=COORDINATOR[1])
    factories.staff(app, "robin@clinic.example", name="Robin Colleague")
    casey, robin = new_page(viewport=TABLET), new_page()
    for page, email in ((casey, COORDINATOR[0]), (robin, "robin@clinic.example")):
        page.goto("/staff/")
        sign_in(page, email)
        page.wait_for_url(re.compile(r"/staff/$"))
        queue_row(page, callback_id).get_by_role("link").click()  # opened, not claimed
        page.wait_for_url(re.compile(rf"/staff/callbacks/{callback_id}$"))
        who = page.get_by_role("region", name="Who to call")
        expect(who).to_contain_text("0188")
        expect(page.locator(f'a[href="tel:{CALLER}"]')).to_have_count(0)
        expect(page.locator("main")).not_to_contain_text(CALLER_DISPLAY)
        expect(page.get_by_role("radio", name=OUTCOME)).to_have_count(0)
        expect(who.get_by_role("button", name="Claim and call")).to_be_visible()

    casey.get_by_role("region", name="Who to call").get_by_role("button", name="Claim and call").click()
    casey.wait_for_url(re.compile(rf"/staff/callbacks/{callback_id}$"))
    expect(casey.get_by_role("region", name="Who to call").get_by_role("link", name=CALLER_DISPLAY)).to_have_attribute(
        "href", f"tel:{CALLER}")
    expect(casey.get_by_role("radio", name=OUTCOME)).to_have_count(1)

    # Robin's page was opened before Casey claimed it: pressing Claim and call now is refused.
    robin.get_by_role("region", name="Who to call").get_by_role("button", name="Claim and call").click()
    robin.wait_for_url(re.compile(rf"/staff/callbacks/{callback_id}$"))
    expect(robin.locator("main")).to_contain_text(f"{COORDINATOR[1]} is working on this request right now.")
    expect(robin.locator(f'a[href="tel:{CALLER}"]')).to_have_count(0)
    expect(robin.locator("main")).not_to_contain_text(CALLER_DISPLAY)
    expect(robin.get_by_role("radio", name=OUTCOME)).to_have_count(0)
    with app.app_context():
        item = db.session.get(CallbackRequest, callback_id)
        holder = db.session.scalar(sa.select(StaffUser.email).where(StaffUser.id == item.claimed_by_id))
    assert holder == COORDINATOR[0]


def test_back_from_a_request_found_by_number_shows_the_results_again(new_page, expect, app):
    """Mid-call, a coordinator finds the caller, opens the request, and goes Back: the results,
    not the browser's "Confirm Form Resubmission" page."""
    callback_id = caller_leaves_a_request(app)
    factories.staff(app, COORDINATOR[0], name=COORDINATOR[1])
    page = new_page()
    page.goto("/staff/")
    sign_in(page, COORDINATOR[0])
    page.wait_for_url(re.compile(r"/staff/$"))
    page.get_by_label("Find a caller by phone number").fill(CALLER_DISPLAY)
    page.get_by_role("button", name="Find caller").click()
    page.wait_for_url(re.compile(r"/staff/\?found="))
    assert "0188" not in page.url and "555" not in page.url
    expect(page.locator("main")).to_contain_text("for the number ending in 0188, open and closed")
    queue_row(page, callback_id).get_by_role("link").click()
    page.wait_for_url(re.compile(rf"/staff/callbacks/{callback_id}$"))
    page.go_back()
    page.wait_for_url(re.compile(r"/staff/\?found="))
    expect(page.locator("main")).to_contain_text("for the number ending in 0188, open and closed")
    expect(queue_row(page, callback_id)).to_have_count(1)
