"""Signing in and out of the staff pages: errors, the throttle, idle expiry, CSRF, sessions."""

import threading

import pytest
import sqlalchemy as sa

from tests.staff import (
    BASE,
    PASSWORD,
    StaffClient,
    add_request,
    add_staff,
    audit_rows,
    flashes,
    get_request,
    html,
    sign_in_page_redirect,
    staff_id,
)
from voiceline.auth import FREE_FAILURES, email_key
from voiceline.extensions import db
from voiceline.models import SignInFailure, now_utc


def test_sign_in_then_sign_out(app):
    add_staff(app, "ana@clinic.example", "Ana Ortiz")
    browser = StaffClient(app)
    form = browser.page("/staff/sign-in").one("form")
    assert {el.get("name") for el in form.find_all("input")} == {"csrf_token", "email", "password"}
    for name in ("email", "password"):
        assert form.one("label", **{"for": name}).text  # every input has its label
    response = browser.sign_in("Ana@Clinic.example ", PASSWORD)
    assert response.status_code == 302 and response.headers["Location"] == "/staff/"
    doc = html(browser.get("/staff/"))
    assert "Signed in. Welcome, Ana Ortiz." in flashes(doc)[0]
    assert "Ana Ortiz" in doc.one("div", class_="account").text
    [entry] = audit_rows(app, "sign_in")
    assert (entry.actor, entry.address) == ("ana@clinic.example", "127.0.0.1")

    response = browser.post("/staff/sign-out")
    assert response.status_code == 302 and response.headers["Location"] == "/staff/sign-in"
    assert "You are signed out." in flashes(html(browser.get("/staff/sign-in")))[0]
    assert sign_in_page_redirect(browser.get("/staff/"))
    [entry] = audit_rows(app, "sign_out")
    assert entry.detail == {"reason": "signed_out"} and entry.actor == "ana@clinic.example"


def test_signing_out_ends_a_copied_session_too(app):
    """The session is the cookie: a copy taken before sign-out must not keep working."""
    add_staff(app, "ana@clinic.example", "Ana Ortiz")
    browser = StaffClient(app).signed_in_as("ana@clinic.example")
    copy = StaffClient(app)
    cookie = browser.client.get_cookie("session", domain="localhost")
    copy.client.set_cookie("session", cookie.value, domain="localhost")
    assert copy.get("/staff/").status_code == 200  # the copy works while Ana is signed in
    browser.post("/staff/sign-out")
    assert sign_in_page_redirect(copy.get("/staff/"))


@pytest.mark.parametrize("next_path", ["/staff/%0d%0aSet-Cookie:%20x=1", "/staff/%0aX"])
def test_a_next_path_with_line_breaks_is_ignored(app, next_path):
    add_staff(app, "ana@clinic.example", "Ana Ortiz")
    response = StaffClient(app).sign_in("ana@clinic.example", PASSWORD, next_path=next_path)
    assert response.status_code == 302 and response.headers["Location"] == "/staff/"


def test_sign_out_needs_a_post_with_a_token(coordinator):
    assert coordinator.get("/staff/sign-out").status_code == 405
    response = coordinator.post("/staff/sign-out", csrf=False)
    assert response.status_code == 400
    assert coordinator.get("/staff/").status_code == 200  # still signed in


def test_wrong_password_is_refused_without_saying_which_part_was_wrong(app):
    add_staff(app, "ana@clinic.example", "Ana Ortiz")
    browser = StaffClient(app)
    for email in ("ana@clinic.example", "nobody@clinic.example"):
        response = browser.sign_in(email, "not the password")
        assert response.status_code == 401
        doc = html(response)
        alert = doc.one("div", class_="error-summary")
        assert alert.get("role") == "alert"
        assert "That email and password do not match an active account." in alert.text
        assert "try again in" not in alert.text
        assert doc.one("input", name="email").get("value") == email  # kept, so only the password is retyped
        assert doc.one("input", name="password").get("value") in (None, "")
    assert sign_in_page_redirect(browser.get("/staff/"))
    assert [e.actor for e in audit_rows(app, "sign_in_failed")] == ["ana@clinic.example", "nobody@clinic.example"]


def _behind_router(browser: StaffClient, client_address: str) -> StaffClient:
    browser.client.environ_base.update(REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR=client_address)
    return browser


def test_behind_a_trusted_router_one_client_cannot_lock_out_the_others(make_app):
    app = make_app(TRUSTED_PROXIES="1")
    add_staff(app, "ana@clinic.example", "Ana Ortiz")
    stranger = _behind_router(StaffClient(app), "203.0.113.9")
    for n in range(FREE_FAILURES):
        response = stranger.sign_in(f"guess{n}@clinic.example", "guess")
    assert response.status_code == 429
    ana = _behind_router(StaffClient(app), "198.51.100.7")
    assert ana.sign_in("ana@clinic.example", PASSWORD).status_code == 302
    with app.app_context():
        assert "ip:203.0.113.9" in set(db.session.scalars(sa.select(SignInFailure.key)))
    assert {e.address for e in audit_rows(app, "sign_in_failed")} == {"203.0.113.9"}
    assert audit_rows(app, "sign_in")[-1].address == "198.51.100.7"


def test_without_trusted_proxies_a_forwarded_address_is_not_believed(app):
    add_staff(app, "ana@clinic.example", "Ana Ortiz")
    _behind_router(StaffClient(app), "198.51.100.7").sign_in("ana@clinic.example", PASSWORD)
    assert audit_rows(app, "sign_in")[-1].address == "10.1.2.3"


def test_empty_form_says_what_is_missing(app):
    doc = html(StaffClient(app).post("/staff/sign-in", {"email": "", "password": ""}))
    assert doc.one("title").text == "Error: Sign in · Voiceline staff"  # announced first
    errors = [el.text for el in doc.find_all("p", class_="error-message")]
    assert errors == ["Error: Enter your email.", "Error: Enter your password."]
    assert doc.one("input", name="email").get("aria-describedby") == "email-error"
    assert audit_rows(app, "sign_in_failed") == []


def test_five_failures_slow_the_account_down_and_the_page_shows_the_wait(app, monkeypatch):
    moment = now_utc()
    monkeypatch.setattr("voiceline.staff.auth_views.now_utc", lambda: moment)  # a slow machine: still 30 s
    add_staff(app, "ana@clinic.example", "Ana Ortiz")
    browser = StaffClient(app)
    for _ in range(4):
        response = browser.sign_in("ana@clinic.example", "guess")
        assert "try again in" not in html(response).text
    response = browser.sign_in("ana@clinic.example", "guess")
    assert response.status_code == 429
    summary = html(response).one("div", class_="error-summary")
    assert "Sign-in is paused" in summary.text and "You can try again in 30 seconds." in summary.text
    # Even the right password is refused while the pause lasts.
    response = browser.sign_in("ana@clinic.example", PASSWORD)
    assert response.status_code == 429
    summary = html(response).one("div", class_="error-summary")
    assert "Too many failed sign-ins." in summary.text
    assert "You can try again in 30 seconds." in summary.text
    assert sign_in_page_redirect(browser.get("/staff/"))
    with app.app_context():
        keys = set(db.session.scalars(sa.select(SignInFailure.key)))
        assert keys == {email_key("ana@clinic.example"), "ip:127.0.0.1"}
    assert not any("ana@" in key for key in keys)
    assert audit_rows(app, "sign_in_failed")[-1].detail == {"throttled": True}


def test_sign_in_starts_a_fresh_session(app):
    add_staff(app, "ana@clinic.example", "Ana Ortiz")
    browser = StaffClient(app)
    browser.get("/staff/sign-in")
    with browser.client.session_transaction(base_url=BASE) as session:
        session["planted"] = "by someone else"
    browser.sign_in("ana@clinic.example")
    with browser.client.session_transaction(base_url=BASE) as session:
        assert "planted" not in session
        assert session.permanent and isinstance(session["last_seen"], float)
    cookie = browser.client.get_cookie("session", domain="localhost")
    assert cookie.secure and cookie.http_only and cookie.expires is not None


def test_next_goes_back_to_the_page_asked_for_but_never_off_site(app):
    add_staff(app, "ana@clinic.example", "Ana Ortiz")
    browser = StaffClient(app)
    response = browser.get("/staff/safety-events?page=1")
    assert response.headers["Location"] == "/staff/sign-in?next=/staff/safety-events?page%3D1"
    response = browser.sign_in("ana@clinic.example", next_path="/staff/safety-events?page%3D1")
    assert response.headers["Location"] == "/staff/safety-events?page=1"
    for evil in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"):
        browser.post("/staff/sign-out")
        response = browser.sign_in("ana@clinic.example", next_path=evil)
        assert response.headers["Location"] == "/staff/", evil


def test_idle_session_is_signed_out_and_told_why(app, coordinator):
    assert coordinator.get("/staff/").status_code == 200
    with coordinator.client.session_transaction(base_url=BASE) as session:
        session["last_seen"] -= 31 * 60
    response = coordinator.get("/staff/safety-events")
    assert response.headers["Location"] == "/staff/sign-in?next=/staff/safety-events"
    doc = html(coordinator.get(response.headers["Location"]))
    assert flashes(doc) == ["Note: You were signed out because there was no activity for 30 minutes. "
                            "Please sign in again."]
    assert doc.find("div", class_="account") is None
    assert sign_in_page_redirect(coordinator.get("/staff/"))
    [entry] = audit_rows(app, "sign_out")
    assert entry.detail == {"reason": "idle"} and entry.actor == "ana@clinic.example"
    assert audit_rows(app, "view_safety_events") == []


def test_activity_keeps_the_session_alive(make_app):
    app = make_app(SESSION_IDLE_MINUTES="5")
    add_staff(app, "ana@clinic.example", "Ana Ortiz")
    browser = StaffClient(app).signed_in_as("ana@clinic.example")
    for _ in range(3):
        with browser.client.session_transaction(base_url=BASE) as session:
            session["last_seen"] -= 4 * 60  # four idle minutes, then a click
        assert browser.get("/staff/").status_code == 200


def test_expired_session_cookie_still_explains_the_sign_out(app, coordinator):
    """The browser drops the session cookie itself once it expires; the page still says why."""
    coordinator.get("/staff/")
    seen = coordinator.client.get_cookie("voiceline_staff_seen", domain="localhost", path="/staff")
    assert seen is not None and seen.value.isdigit() and seen.http_only and seen.secure
    coordinator.client.delete_cookie("session", domain="localhost")
    coordinator.client.set_cookie("voiceline_staff_seen", str(int(seen.value) - 31 * 60),
                                  domain="localhost", path="/staff")
    response = coordinator.get("/staff/")
    assert sign_in_page_redirect(response)
    doc = html(coordinator.get(response.headers["Location"]))
    assert "no activity for 30 minutes" in flashes(doc)[0]
    assert coordinator.client.get_cookie("voiceline_staff_seen", domain="localhost", path="/staff") is None


def test_signed_out_visitor_is_asked_to_sign_in(app):
    browser = StaffClient(app)
    response = browser.get("/staff/")
    assert response.headers["Location"] == "/staff/sign-in?next=/staff/"
    assert flashes(html(browser.get(response.headers["Location"]))) == ["Note: Please sign in to continue."]


def test_form_without_csrf_token_gets_a_friendly_page_and_changes_nothing(app, coordinator):
    callback_id = add_request(app)
    response = coordinator.post(f"/staff/callbacks/{callback_id}/claim", csrf=False)
    assert response.status_code == 400
    doc = html(response)
    assert doc.one("h1").text == "This form has expired"
    assert "reload the page" in doc.one("main").text
    assert "Nothing you entered on it was saved." in doc.one("main").text
    assert "after 30 minutes without activity" in doc.one("main").text
    assert get_request(app, callback_id).claimed_by_id is None
    assert audit_rows(app, "claim") == []
    response = coordinator.post(f"/staff/callbacks/{callback_id}/claim", {"csrf_token": "forged"}, csrf=False)
    assert response.status_code == 400 and get_request(app, callback_id).claimed_by_id is None


def test_sign_in_form_needs_its_token_too(app):
    add_staff(app, "ana@clinic.example", "Ana Ortiz")
    browser = StaffClient(app)
    response = browser.post("/staff/sign-in", {"email": "ana@clinic.example", "password": PASSWORD}, csrf=False)
    assert response.status_code == 400
    assert audit_rows(app, "sign_in") == []


def test_cross_site_referrer_is_refused(app, coordinator):
    callback_id = add_request(app)
    coordinator.client.environ_base["HTTP_REFERER"] = "https://evil.example/page"
    assert coordinator.post(f"/staff/callbacks/{callback_id}/claim").status_code == 400
    assert get_request(app, callback_id).claimed_by_id is None


def test_disabling_an_account_ends_its_sessions(app, coordinator, admin):
    ana_id = staff_id(app, "ana@clinic.example")
    assert admin.post(f"/staff/admin/staff/{ana_id}/disable").status_code == 302
    assert sign_in_page_redirect(coordinator.get("/staff/"))
    response = coordinator.sign_in("ana@clinic.example")
    assert response.status_code == 401


def test_pages_are_not_cached_or_framed(coordinator):
    response = coordinator.get("/staff/")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"  # production: https only
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script" not in csp
    assert not html(response).find_all("script")
    for link in html(response).find_all("link"):
        assert link.get("href").startswith("/staff/static/")  # no external assets


STAFF_HEADERS = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy",
                 "Strict-Transport-Security", "Cache-Control")


def _protected(response) -> dict[str, str]:
    return {name: response.headers.get(name) for name in STAFF_HEADERS}


@pytest.mark.parametrize(("method", "path", "status", "signed_in"), [
    ("GET", "/staff/no-such-page", 404, True),  # no staff route matched: the app's 404 handler
    ("GET", "/staff/no-such-page", 404, False),
    ("GET", "/staff/next", 405, True),  # a POST-only route
    ("GET", "/staff", 308, False),  # to /staff/
    ("POST", "/staff/sign-in", 413, False),  # larger than MAX_CONTENT_LENGTH
])
def test_every_staff_path_gets_the_staff_headers_even_errors(app, coordinator, method, path, status, signed_in):
    expected = _protected(coordinator.get("/staff/"))
    assert expected["Content-Security-Policy"] and expected["Cache-Control"] == "no-store"
    browser = coordinator if signed_in else StaffClient(app)
    data = {"email": "x" * 300_000} if status == 413 else None
    response = browser.client.open(path, method=method, data=data, base_url="https://localhost")
    assert response.status_code == status
    assert _protected(response) == expected
    if status == 404:
        assert html(response).one("h1").text == "Not found"


def test_the_staff_headers_stay_on_staff_paths(app):
    response = app.test_client().get("/healthz")
    assert "Content-Security-Policy" not in response.headers and "Cache-Control" not in response.headers


def test_stylesheet_is_served_without_sign_in(app):
    response = StaffClient(app).get("/staff/static/staff.css")
    assert response.status_code == 200 and response.mimetype == "text/css"
    assert "http" not in response.get_data(as_text=True)  # no external fonts or imports
    response.close()


def test_a_password_typed_into_the_email_box_is_not_kept_in_the_audit_log(app):
    browser = StaffClient(app)
    assert browser.sign_in("Tr0ub4dor&3-horse", "anything").status_code == 401
    [entry] = audit_rows(app, "sign_in_failed")
    assert entry.actor == "(not an email address)" and "Tr0ub4dor" not in str(entry.detail)


def test_guesses_sent_at_once_get_no_more_password_checks_than_five(app, monkeypatch):
    """Each try is counted before its password is checked (a quarter of a second in
    production). Counted after, twelve guesses sent together would all be checked."""
    from voiceline import auth

    add_staff(app, "ana@clinic.example", "Ana Ortiz")
    guesses, checked, answered = 12, [], []
    changed = threading.Condition()
    release = threading.Event()
    real_check = auth.check_password_hash

    def held_check(password_hash: str, password: str) -> bool:
        with changed:
            checked.append(password)
            changed.notify_all()
        release.wait(timeout=60)  # until every guess is either here or answered
        return real_check(password_hash, password)

    def guess(n: int) -> None:
        browser = StaffClient(app)
        browser.get("/staff/sign-in")
        status = browser.post("/staff/sign-in", {"email": "ana@clinic.example", "password": f"guess {n}"}).status_code
        with changed:
            answered.append(status)
            changed.notify_all()

    monkeypatch.setattr(auth, "check_password_hash", held_check)
    threads = [threading.Thread(target=guess, args=(n,), name=f"guess-{n}") for n in range(guesses)]
    for thread in threads:
        thread.start()
    with changed:
        assert changed.wait_for(lambda: len(checked) + len(answered) == guesses, timeout=60)
        held = len(checked)
    release.set()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a sign-in never finished"
    assert held == 5
    assert answered == [429] * guesses  # the five checked finish after the fifth count: they wait too
    with app.app_context():
        failures = db.session.scalars(sa.select(SignInFailure.failures)).all()
    assert failures == [5, 5]  # the account's key and the address's
    assert len(audit_rows(app, "sign_in_failed")) == guesses
