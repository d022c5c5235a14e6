"""Staff pages when something fails: the database not answering or never migrated gets a
page that says so (503) and one log line; a bug gets a friendly 500 page."""

import logging

import pytest

from tests.staff import PASSWORD, StaffClient, add_staff, html
from voiceline.queue import listing

UNREACHABLE = {
    "sqlite": "sqlite:////nonexistent-directory/for/sure/voiceline.db",
    "postgresql": "postgresql://postgres@127.0.0.1:9/voiceline",  # discard port: refused at once
}


def _database_page(response, status: int = 503):
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    doc = html(response)
    assert doc.one("h1").text == "The database is not answering"
    assert "Callers still reach the phone line" in doc.one("p", class_="lead").text
    assert doc.find("form", action="/staff/sign-out") is None  # drawn as for a signed-out visitor
    return doc


def _only_warnings(caplog) -> list[str]:
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert all(r.exc_info is None for r in records), "a traceback was logged"
    return [r.getMessage() for r in records]


@pytest.mark.parametrize("backend", sorted(UNREACHABLE))
def test_sign_in_while_the_database_does_not_answer(make_app, backend, caplog):
    app = make_app(DATABASE_URL=UNREACHABLE[backend])
    browser = StaffClient(app)
    assert browser.get("/staff/sign-in").status_code == 200  # the form needs no database
    _database_page(browser.post("/staff/sign-in", {"email": "ana@clinic.example", "password": PASSWORD}))
    assert _only_warnings(caplog) == ["staff page staff.login: database not answering (OperationalError)"]


def test_a_signed_in_coordinator_whose_database_stops_answering(app, make_app, caplog):
    add_staff(app, "ana@clinic.example", "Ana Ortiz")
    browser = StaffClient(app).signed_in_as("ana@clinic.example")
    down = StaffClient(make_app(DATABASE_URL=UNREACHABLE["sqlite"]))  # the same settings, no database
    down.client.set_cookie("session", browser.client.get_cookie("session", domain="localhost").value,
                           domain="localhost")
    doc = _database_page(down.get("/staff/"))
    assert "Ana Ortiz" not in doc.text
    assert _only_warnings(caplog) == ["staff page staff.queue: database not answering (OperationalError)"]


def test_a_database_never_migrated(make_app, tmp_path, caplog):
    app = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'empty.db'}")
    browser = StaffClient(app)
    browser.get("/staff/sign-in")
    _database_page(browser.post("/staff/sign-in", {"email": "ana@clinic.example", "password": PASSWORD}))
    assert _only_warnings(caplog) == [
        "staff page staff.login: database not set up (run voiceline db upgrade) (OperationalError)"]


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
