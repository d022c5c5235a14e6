"""The queue page: order, what each row shows, filters, pages, and staying fast."""

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from tests.phone import Phone
from tests.staff import (
    StaffClient,
    add_request,
    add_staff,
    ago,
    audit_rows,
    get_request,
    html,
    staff_id,
    table_rows,
)
from voiceline.extensions import db
from voiceline.models import CallbackRequest, now_utc
from voiceline.models.callbacks import PRIORITY_MISSED


def ids(doc) -> list[int]:
    return [int(row["Request"].split()[0].lstrip("#")) for row in table_rows(doc, "queue-table")]


def test_requested_calls_first_then_oldest_first(app, coordinator):
    missed_old = add_request(app, reason="missed_call", requested_by_caller=False, missed=True,
                             priority=PRIORITY_MISSED, created_at=ago(hours=5))
    newer = add_request(app, created_at=ago(hours=1))
    older = add_request(app, created_at=ago(hours=2))
    add_request(app, status="closed", outcome="booked", created_at=ago(hours=9))
    doc = coordinator.page("/staff/")
    assert ids(doc) == [older, newer, missed_old]
    assert "3 open requests." in doc.one("p", class_="lead").text
    [missed_row] = [r for r in table_rows(doc, "queue-table") if r["Request"].startswith(f"#{missed_old} ")]
    assert missed_row["Reason"] == "Missed call Did not ask for a call"


def test_row_shows_masked_phone_and_the_callers_answers_in_words(app, coordinator):
    add_request(app, phone="+16175550188", language="es", reason="insurance", preferred_window="evening",
                answers={"coverage": "insurance", "plan_type": "va_tricare", "carrier": "Aetna"}, attempts=2,
                created_at=ago(hours=3, minutes=5))
    response = coordinator.get("/staff/")
    body = re.sub(r'name="csrf_token"[^>]*>', "", response.get_data(as_text=True))  # a token's random "555"
    assert "6175550188" not in body and "555-0188" not in body and "555" not in body
    [row] = table_rows(html(response), "queue-table")
    assert row["Request"].endswith(" •••-•••-0188phone ending in 0188")  # and what a screen reader says
    assert (row["Reason"], row["Language"], row["Best time"]) == ("Insurance and cost", "Spanish", "Evening")
    assert row["What they told us"] == "pays by insurance · plan VA/TRICARE · carrier Aetna"
    assert row["Waiting"].startswith("3 h 5 min since ") and row["Tries"] == "2" and row["Who has it"] == "Nobody yet"
    assert html(response).one("span", class_="tag-language").text == "Spanish"  # stands out in the list


def test_summary_follows_the_order_of_the_questions(app, coordinator):
    # Stored answers can come back in any key order (PostgreSQL's JSONB sorts them).
    add_request(app, answers={"under_care_now": "no", "age_18_or_older": "yes", "mood_disorder_diagnosis": "no"})
    [row] = table_rows(coordinator.page("/staff/"), "queue-table")
    assert row["What they told us"] == "18+ yes · mood diagnosis no · in care no"


def test_overdue_mark_after_the_sla(make_app):
    app = make_app(CALLBACK_SLA_HOURS="4")
    add_staff(app, "ana@clinic.example", "Ana Ortiz")
    browser = StaffClient(app).signed_in_as("ana@clinic.example")
    late = add_request(app, created_at=ago(hours=4, minutes=1))
    on_time = add_request(app, created_at=ago(hours=3, minutes=59))
    doc = browser.page("/staff/")
    rows = {int(r["Request"].split()[0][1:]): r for r in table_rows(doc, "queue-table")}
    assert rows[late]["Waiting"].startswith("4 h 1 min Overdue since ")  # in words, not only colour
    assert rows[on_time]["Waiting"].startswith("3 h 59 min since ")
    assert "more than 4 hours" in doc.one("main").text
    overdue_rows = doc.find("table").find_all("tr", class_="is-overdue")
    assert len(overdue_rows) == 1


def test_who_has_it_only_while_the_claim_is_live(app, coordinator, colleague):
    ben, ana = staff_id(app, "ben@clinic.example"), staff_id(app, "ana@clinic.example")
    live = add_request(app, claimed_by_id=ben, claimed_at=ago(minutes=5), created_at=ago(hours=3))
    stale = add_request(app, claimed_by_id=ben, claimed_at=ago(minutes=31), created_at=ago(hours=2))
    mine = add_request(app, claimed_by_id=ana, claimed_at=ago(minutes=1), created_at=ago(hours=1))
    rows = table_rows(coordinator.page("/staff/"), "queue-table")
    assert [(r["Request"].split()[0], r["Who has it"]) for r in rows] == [
        (f"#{live}", "Ben Carter"), (f"#{stale}", "Nobody yet"), (f"#{mine}", "You")]


def test_filters(app, coordinator):
    ana = staff_id(app, "ana@clinic.example")
    english = add_request(app, language="en", reason="candidacy", created_at=ago(hours=4))
    spanish = add_request(app, language="es", reason="insurance", created_at=ago(hours=3))
    mine = add_request(app, language="en", reason="general", claimed_by_id=ana, claimed_at=ago(minutes=2),
                       created_at=ago(hours=2))
    closed = add_request(app, status="closed", outcome="wrong_number", closed_at=ago(hours=1),
                         created_at=ago(hours=5))
    assert ids(coordinator.page("/staff/?language=es")) == [spanish]
    assert ids(coordinator.page("/staff/?reason=candidacy")) == [english]
    assert ids(coordinator.page("/staff/?mine=y")) == [mine]
    doc = coordinator.page("/staff/?status=closed")
    assert ids(doc) == [closed]
    [closed_row] = table_rows(doc, "queue-table")
    assert closed_row["Outcome"] == "Closed Wrong number"
    assert closed_row["Closed"].startswith("Closed ") and "Overdue" not in closed_row["Closed"]
    assert set(ids(coordinator.page("/staff/?status=all"))) == {english, spanish, mine, closed}
    # Nonsense in the query string falls back to the default view instead of failing.
    doc = coordinator.page("/staff/?status=bogus&reason=<b>&language=xx&page=abc")
    assert ids(doc) == [english, spanish, mine]
    # The form shows what is applied, every control labelled.
    form = coordinator.page("/staff/?language=es&mine=y").one("form", class_="filters")
    assert form.one("select", name="language").find("option", selected=True).get("value") == "es"
    assert "checked" in form.one("input", name="mine").attrs
    for control in form.find_all("select") + form.find_all("input"):
        assert form.one("label", **{"for": control.get("id")}).text
    entries = audit_rows(app, "list_callbacks")
    assert {"status": "open", "language": "es", "mine": True, "page": 1, "callback_ids": []} in [
        e.detail for e in entries]


def test_the_audit_names_the_requests_each_page_showed(app, coordinator):
    made = [add_request(app, created_at=ago(minutes=100 - i)) for i in range(55)]
    assert ids(coordinator.page("/staff/")) == made[:50]
    assert ids(coordinator.page("/staff/?page=2")) == made[50:]
    found = html(coordinator.post("/staff/", {"phone": get_request(app, made[7]).phone}, follow_redirects=True))
    assert ids(found) == [made[7]]
    entries = audit_rows(app, "list_callbacks")[-3:]  # (signing in landed on the empty queue)
    assert [(e.detail["page"], e.detail["callback_ids"]) for e in entries] == [
        (1, made[:50]), (2, made[50:]), (1, [made[7]])]


def test_pages_of_fifty_keep_the_filters(app, coordinator):
    start = ago(days=2)
    with app.app_context():
        db.session.execute(sa.insert(CallbackRequest), [
            dict(phone=f"+1212555{i:04d}", language="es", reason="general", call_sid=f"CA{i:032d}",
                 prompts_version="t", created_at=start + dt.timedelta(minutes=i))
            for i in range(120)])
        db.session.commit()
    doc = coordinator.page("/staff/?language=es")
    assert len(ids(doc)) == 50
    nav = doc.one("nav", class_="pagination")
    assert "Page 1 of 3" in nav.text and nav.find("a", rel="prev") is None
    next_link = nav.one("a", rel="next").get("href")
    assert next_link == "/staff/?page=2&status=open&language=es"
    second = coordinator.page(next_link)
    last = coordinator.page("/staff/?page=99&language=es")  # past the end: the last page
    assert len(ids(second)) == 50 and len(ids(last)) == 20
    assert "Page 3 of 3" in last.one("nav", class_="pagination").text
    assert last.one("nav", class_="pagination").find("a", rel="next") is None
    assert len(set(ids(doc)) | set(ids(second)) | set(ids(last))) == 120


def test_empty_queue_says_so(coordinator):
    doc = coordinator.page("/staff/")
    assert doc.find("table") is None
    assert "Nothing waiting" in doc.one("div", class_="empty").text
    assert doc.one("form", class_="next-form").one("button").text == "Next request"


def _statements(app, path, browser):
    count = 0

    def counter(*_):
        nonlocal count
        count += 1

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", counter)
    try:
        assert browser.get(path).status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", counter)
    return count


def test_no_query_per_row(app, coordinator, colleague):
    ben = staff_id(app, "ben@clinic.example")
    add_request(app, claimed_by_id=ben, claimed_at=ago(minutes=1))
    few = _statements(app, "/staff/", coordinator)
    for i in range(30):
        add_request(app, claimed_by_id=ben if i % 2 else None, claimed_at=now_utc() if i % 2 else None)
    many = _statements(app, "/staff/", coordinator)
    assert many == few, "the queue page makes a query per row"
    assert few <= 8


@pytest.mark.slow
def test_queue_pages_through_100000_requests_in_queue_order(app, coordinator):
    """The right fifty on deep pages of a large queue (its speed is bench/'s: `make bench`)."""
    start = now_utc() - dt.timedelta(days=60)
    with app.app_context():
        for chunk in range(10):
            db.session.execute(sa.insert(CallbackRequest), [
                dict(phone=f"+1{2000000000 + n}", language="en" if n % 3 else "es", reason="general",
                     call_sid=f"CA{n:032d}", prompts_version="t", answers={"coverage": "self_pay"},
                     status="open" if n % 4 else "closed", created_at=start + dt.timedelta(seconds=n * 50))
                for n in range(chunk * 10_000, (chunk + 1) * 10_000)])
        db.session.commit()
    open_ones = [n for n in range(100_000) if n % 4]  # oldest first: n is the order of creation
    spanish = [n for n in open_ones if n % 3 == 0]
    expected = {
        "/staff/": open_ones[:50],
        "/staff/?language=es": spanish[:50],
        "/staff/?page=700": open_ones[699 * 50:700 * 50],
    }
    for path, numbers in expected.items():
        assert created_numbers(app, ids(coordinator.page(path))) == numbers, path
    assert len(ids(coordinator.page("/staff/?status=closed&page=200"))) == 50


def created_numbers(app, callback_ids: list[int]) -> list[int]:
    """The n each listed request was made with (its call SID), in the page's order."""
    with app.app_context():
        sids = dict(db.session.execute(
            sa.select(CallbackRequest.id, CallbackRequest.call_sid).where(CallbackRequest.id.in_(callback_ids))).all())
    return [int(sids[i][2:]) for i in callback_ids]


def test_every_page_says_which_zone_its_times_are_in(app, coordinator):
    footer = coordinator.page("/staff/").one("footer", class_="site-footer")
    assert "All times are clinic time (America/New_York, E" in footer.text  # EST or EDT, by season


@pytest.mark.parametrize("typed", ["(617) 555-0123", "617-555-0123", "+1 617 555 0123", "16175550123"])
def test_find_a_caller_by_their_whole_number(app, coordinator, typed):
    wanted = add_request(app, phone="+16175550123")
    closed = add_request(app, phone="+16175550123", status="closed", outcome="booked", closed_at=ago(hours=1))
    add_request(app, phone="+16175559123")
    add_request(app, phone="+16175550124")
    finder = coordinator.page("/staff/").one("form", class_="find-caller")
    assert finder.get("method") == "post"  # a number in a query string would be in the access logs
    response = coordinator.post("/staff/", {"phone": typed}, follow_redirects=True)
    doc = html(response)
    assert sorted(ids(doc)) == sorted([wanted, closed])
    assert "for the number ending in 0123, open and closed" in doc.one("p", class_="lead").text
    # The audit log keeps only the last four digits of what was searched for.
    assert audit_rows(app, "list_callbacks")[-1].detail["phone"].endswith("0123")
    assert "5550123" not in str(audit_rows(app, "list_callbacks")[-1].detail)


def test_find_callers_by_the_last_four_digits(app, coordinator):
    first = add_request(app, phone="+16175550123", created_at=ago(hours=2))
    second = add_request(app, phone="+12125550123", created_at=ago(hours=1))
    add_request(app, phone="+16175550124")
    assert ids(html(coordinator.post("/staff/", {"phone": "0123"}, follow_redirects=True))) == [first, second]
    doc = html(coordinator.post("/staff/", {"phone": "9999"}, follow_redirects=True))
    assert doc.one("div", class_="empty").one("h2").text == "No requests for the number ending in 9999"


@pytest.mark.parametrize("typed", ["123", "555-01", "12345678901234", "%123", "abcd", ""])
def test_a_search_that_is_not_a_number_says_so(app, coordinator, typed):
    add_request(app, phone="+16175550123")
    response = coordinator.post("/staff/", {"phone": typed}, follow_redirects=True)
    assert response.status_code == 400
    doc = html(response)
    assert doc.one("form", class_="find-caller").one("p", class_="error-message").text in (
        "Error: Enter a 10-digit US number, or its last 4 digits.", "Error: Type a phone number.")
    assert len(ids(doc)) == 1  # the queue as if nothing was typed


def test_a_search_redirects_to_its_results_so_back_returns_to_them(app, coordinator, colleague):
    """POST, then a GET of the results: Back from a request found this way shows the results
    again, not the browser's "Confirm Form Resubmission". The address names no digits of the
    number, and works only for the coordinator who searched, while a session would last."""
    first = add_request(app, phone="+16175550123", created_at=ago(hours=2))
    second = add_request(app, phone="+12125550123", created_at=ago(hours=1))
    add_request(app, phone="+16175550124")
    response = coordinator.post("/staff/", {"phone": "(617) 555-0123"})
    assert response.status_code == 303
    results = response.headers["Location"]
    assert results.startswith("/staff/?found=") and not any(d in results for d in ("0123", "617", "555"))
    for _ in range(2):  # the results, and the same again as Back shows them
        doc = coordinator.page(results)
        assert ids(doc) == [first]
        assert "for the number ending in 0123, open and closed" in doc.one("p", class_="lead").text
    assert [e.detail["callback_ids"] for e in audit_rows(app, "list_callbacks")[-2:]] == [[first], [first]]
    assert ids(coordinator.page(coordinator.post("/staff/", {"phone": "0123"}).headers["Location"])) == [first, second]
    for stranger, address in ((colleague, results), (coordinator, results[:-3] + "xyz")):
        doc = stranger.page(address)
        assert "That search has expired: find the caller again." in doc.text
        assert len(ids(doc)) == 3  # the open queue, as without a search


def test_a_phone_search_without_the_form_token_is_refused(app, coordinator):
    assert coordinator.post("/staff/", {"phone": "0123"}, csrf=False).status_code == 400


TOO_BIG_FOR_SQL = "99999999999999999999"  # past a 64-bit OFFSET, even before times 50


def test_a_page_number_too_big_for_sql_is_the_queues_last_page(app, admin):
    start = now_utc() - dt.timedelta(days=1)
    with app.app_context():  # 51 open requests: two pages, the newest alone on the second
        db.session.execute(sa.insert(CallbackRequest), [
            dict(phone=f"+1617555{n:04d}", language="en", reason="general", call_sid=f"CA{n:032d}",
                 prompts_version="t", answers={}, created_at=start + dt.timedelta(minutes=n)) for n in range(51)])
        db.session.commit()
        newest = db.session.scalar(sa.select(CallbackRequest.id).where(CallbackRequest.call_sid == f"CA{50:032d}"))
    doc = admin.page(f"/staff/?page={TOO_BIG_FOR_SQL}")
    assert ids(doc) == [newest]
    assert "51 open requests." in doc.one("p", class_="lead").text
    pages = doc.one("nav", class_="pagination")
    assert pages.one("span", class_="pagination-where").text == "Page 2 of 2"
    assert pages.one("a", rel="prev").get("href") == "/staff/?page=1&status=open"
    assert pages.find("a", rel="next") is None
    assert audit_rows(app, "list_callbacks")[-1].detail["page"] == 1_000_000  # clamped before SQL saw it


@pytest.mark.parametrize("path,action", [("/staff/safety-events", "view_safety_events"),
                                         ("/staff/admin/audit", "view_audit")])
def test_a_page_number_past_the_end_is_the_last_page(app, admin, path, action):
    """The safety events and the audit log, as the queue: an old link past the end shows the
    last page (blueprint.paginate), never "nothing here" when there is something."""
    crisis = Phone(app)
    crisis.call()
    crisis.press_through("1", "9")  # a safety event there is to list
    response = admin.get(f"{path}?page={TOO_BIG_FOR_SQL}")
    assert response.status_code == 200
    doc = html(response)
    assert doc.one("h1").text in ("Safety events", "Audit log")
    rows = doc.one("tbody").find_all("tr")
    assert rows, "the last page has rows"
    if action == "view_safety_events":
        assert len(rows) == 1 and "Nobody has used the crisis-line key" not in doc.text
    assert audit_rows(app, action)[-1].detail["page"] == 1_000_000
    if action == "view_audit":
        assert f"{len(audit_rows(app))} entries." in doc.one("main").text  # the count is of them all
