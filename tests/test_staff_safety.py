"""The safety events page: every press of the crisis key, newest first, audited."""

import sqlalchemy as sa

from tests.phone import Phone
from tests.staff import (
    add_request,
    audit_rows,
    html,
    table_rows,
)
from voiceline.extensions import db
from voiceline.models import SafetyEvent


def crisis_press(app, from_number: str, language_key: str, dial_status: str | None):
    phone = Phone(app, from_number=from_number)
    phone.call()
    phone.press(language_key)
    phone.press("9")
    if dial_status:
        phone.dial_result(dial_status)
    phone.hang_up()


def test_crisis_presses_newest_first_with_masked_callers(app, coordinator):
    crisis_press(app, "+16175550123", "1", "completed")
    crisis_press(app, "+13055550111", "2", None)
    callback_id = add_request(app, phone="+16175550123")
    response = coordinator.get("/staff/safety-events")
    body = response.get_data(as_text=True)
    assert "6175550123" not in body and "555-0123" not in body
    rows = table_rows(html(response))
    assert [(r["Caller"], r["Language"], r["Number dialled"], r["Result"]) for r in rows] == [
        ("•••-•••-0111phone ending in 0111", "Spanish", "988", "Not reported yet"),
        ("•••-•••-0123phone ending in 0123", "English", "988", "Connected"),
    ]
    assert rows[1]["Callback request"] == f"#{callback_id}" and rows[0]["Callback request"] == "None"
    assert all(r["When"] for r in rows)
    with app.app_context():
        newest_first = db.session.scalars(sa.select(SafetyEvent.id).order_by(SafetyEvent.at.desc())).all()
    [entry] = audit_rows(app, "view_safety_events")
    assert (entry.actor, entry.detail) == ("ana@clinic.example", {"page": 1, "event_ids": newest_first})
    assert len(newest_first) == 2
    nav = html(coordinator.get("/staff/safety-events")).one("nav", **{"aria-label": "Main"})
    assert nav.one("a", **{"aria-current": "page"}).text == "Safety events"


def test_no_events_yet(coordinator):
    doc = coordinator.page("/staff/safety-events")
    assert doc.find("table") is None and "Nobody has used the crisis-line key yet." in doc.text
