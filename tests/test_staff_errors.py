"""Staff pages when something fails: the database not answering or never migrated gets a
page that says so (503) and one log line; a bug gets a friendly 500 page."""

import logging

import pytest
import sqlalchemy as sa

from tests.staff import PASSWORD, StaffClient, add_staff, html
from voiceline.extensions import db
from voiceline.queue import listing

UNREACHABLE = {
    "sqlite": "sqlite:////nonexistent-directory/for/sure/voiceline.db",
    # The discard port on this machine, nothing listening: refused at once (the timeout a backstop).
    "postgresql": "postgresql://postgres@127.0.0.1:9/voiceline?connect_timeout=2",
}


def _backend(database_url: str) -> str:
    return sa.engine.make_url(database_url).get_backend_name()


def _database_page(response, status: int = 503):
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    doc = html(response)
    assert doc.one("h1").text == "The database is not available"
    assert "Callers still reach the phone line" in doc.one("p", class_="lead").text
    assert doc.find("form", action="/staff/sign-out") is None  # drawn as for a signed-out visitor
    return doc


def _only_warnings(caplog) -> list[str]:
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert all(r.exc_info is None and not r.exc_text for r in records), "a traceback was logged"
    return [r.getMessage() for r in records]


@pytest.mark.parametrize("backend", sorted(UNREACHABLE))
def test_sign_in_while_the_database_does_not_answer(make_app, backend, caplog):
    app = make_app(DATABASE_URL=UNREACHABLE[backend])
    browser = StaffClient(app)
    assert browser.get("/staff/sign-in").status_code == 200  # the form needs no database
    _database_page(browser.post("/staff/sign-in", {"email": "ana@clinic.example", "password": PASSWORD}))
    assert _only_warnings(caplog) == ["staff page staff.login: database not answering (OperationalError)"]


def test_a_signed_in_coordinator_whose_database_stops_answering(app, make_app, database_url, caplog):
    add_staff(app, "ana@clinic.example", "Ana Ortiz")
    browser = StaffClient(app).signed_in_as("ana@clinic.example")
    # The same settings and backend, no database.
    down = StaffClient(make_app(DATABASE_URL=UNREACHABLE[_backend(database_url)]))
    down.client.set_cookie("session", browser.client.get_cookie("session", domain="localhost").value,
                           domain="localhost")
    doc = _database_page(down.get("/staff/"))
    assert "Ana Ortiz" not in doc.text
    assert _only_warnings(caplog) == ["staff page staff.queue: database not answering (OperationalError)"]


def test_a_database_never_migrated(make_app, empty_database_url, caplog):
    """SQLite says "no such table"; PostgreSQL says undefined_table (42P01), a ProgrammingError."""
    app = make_app(DATABASE_URL=empty_database_url)
    browser = StaffClient(app)
    browser.get("/staff/sign-in")
    doc = _database_page(browser.post("/staff/sign-in", {"email": "ana@clinic.example", "password": PASSWORD}))
    assert "an admin needs to run voiceline db upgrade" in doc.one("p", class_="lead").text
    error = "ProgrammingError" if _backend(empty_database_url) == "postgresql" else "OperationalError"
    assert _only_warnings(caplog) == [
        f"staff page staff.login: database not set up (run voiceline db upgrade) ({error})"]


def test_a_database_behind_this_code(make_app, empty_database_url, caplog):
    """Migrated to 0004 only (the release step did not run): the queue's new column is missing.
    SQLite says "no such column"; PostgreSQL says undefined_column (42703)."""
    from flask_migrate import upgrade

    from voiceline import init_migrations

    app = make_app(DATABASE_URL=empty_database_url)
    init_migrations(app)
    with app.app_context():
        upgrade(revision="0004_retention")
    add_staff(app, "ana@clinic.example", "Ana Ortiz")
    browser = StaffClient(app)
    signed_in = browser.sign_in("ana@clinic.example")  # staff_users is as this code has it
    assert (signed_in.status_code, signed_in.headers["Location"]) == (302, "/staff/")
    doc = _database_page(browser.get("/staff/"))
    assert "an admin needs to run voiceline db upgrade" in doc.one("p", class_="lead").text
    error = "ProgrammingError" if _backend(empty_database_url) == "postgresql" else "OperationalError"
    assert _only_warnings(caplog) == [
        f"staff page staff.queue: database not set up (run voiceline db upgrade) ({error})"]


def test_a_bug_gets_a_friendly_page_not_flasks(app, coordinator, monkeypatch):
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: TESTING would re-raise

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(listing, "queue_page", broken)
    response = coordinator.get("/staff/")
    assert response.status_code == 500
    doc = html(response)
    assert doc.one("h1").text == "Something went wrong"
    assert "logged for your admin" in doc.one("p", class_="lead").text
    assert doc.find("form", action="/staff/sign-out") is not None  # still signed in: the menu is there


def test_the_database_lost_mid_page_for_a_signed_in_coordinator(app, coordinator, monkeypatch, caplog):
    """The account was loaded before the database went: the rollback expires it, and drawing
    the page's menu must not try to reload it."""
    lost = [False]

    def refuse(*_args):
        if lost[0]:
            raise sa.exc.DisconnectionError("the database went away")

    with app.app_context():
        sa.event.listen(db.engine, "before_cursor_execute", refuse)

    def queue_page(*_args, **_kwargs):
        lost[0] = True
        db.session.execute(sa.text("SELECT 1"))

    monkeypatch.setattr(listing, "queue_page", queue_page)
    try:
        _database_page(coordinator.get("/staff/"))
    finally:
        with app.app_context():
            sa.event.remove(db.engine, "before_cursor_execute", refuse)
    assert _only_warnings(caplog) == ["staff page staff.queue: database not answering (DisconnectionError)"]


def test_a_database_error_that_is_a_bug_gets_the_500_page(app, coordinator, monkeypatch, caplog):
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def broken(*_args, **_kwargs):
        db.session.execute(sa.text("SELEC 1"))  # a typo: a bug, not a database that is down

    monkeypatch.setattr(listing, "queue_page", broken)
    response = coordinator.get("/staff/")
    assert response.status_code == 500
    doc = html(response)
    assert doc.one("h1").text == "Something went wrong"
    assert doc.find("form", action="/staff/sign-out") is not None  # the database is fine: the menu is drawn
    assert any(r.exc_info or r.exc_text for r in caplog.records), "a bug keeps its traceback in the log"
