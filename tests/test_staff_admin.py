"""Admin pages: staff accounts, the audit log, and the CSV export."""

import csv
import datetime as dt
import io
import json

from tests.staff import (
    PASSWORD,
    StaffClient,
    add_request,
    audit_rows,
    flashes,
    follow,
    get_request,
    html,
    sign_in_page_redirect,
    table_rows,
)
from voiceline import audit
from voiceline.auth import find_staff
from voiceline.extensions import db
from voiceline.models import StaffUser
from voiceline.staff.admin_views import cell


def account(app, email: str) -> StaffUser:
    with app.app_context():
        staff = find_staff(db.session, email)
        db.session.expunge(staff)
        return staff


# ---- staff accounts --------------------------------------------------------------------------------
def test_staff_list_and_adding_a_coordinator(app, admin, coordinator):
    rows = table_rows(admin.page("/staff/admin/staff"))
    assert [(r["Name"], r["Email"], r["Role"], r["Status"]) for r in rows] == [
        ("Ana Ortiz", "ana@clinic.example", "Coordinator", "Active"),
        ("Dana Admin (you)", "dana@clinic.example", "Admin", "Active"),
    ]
    response = admin.post("/staff/admin/staff", {"name": "Cruz Lima", "email": "Cruz@Clinic.example",
                                                  "role": "coordinator", "password": "a long first password"})
    doc = follow(admin, response)
    assert flashes(doc) == ["Done: Added Cruz Lima (cruz@clinic.example) as a coordinator. "
                            "Give them the password in person or by phone, not by email."]
    assert "cruz@clinic.example" in [r["Email"] for r in table_rows(doc)]
    assert account(app, "cruz@clinic.example").role == "coordinator"
    [entry] = [e for e in audit_rows(app, "staff_add") if e.actor == "dana@clinic.example"]
    assert entry.detail == {"email": "cruz@clinic.example", "role": "coordinator"}
    assert StaffClient(app).sign_in("cruz@clinic.example", "a long first password").status_code == 302


def test_adding_staff_explains_what_is_wrong(app, admin, coordinator):
    response = admin.post("/staff/admin/staff", {"name": "", "email": "ana@clinic.example", "role": "admin",
                                                  "password": "short"})
    assert response.status_code == 400
    errors = [p.text for p in html(response).find_all("p", class_="error-message")]
    assert errors == ["Error: Enter their name.", "Error: Passwords need at least 10 characters."]
    response = admin.post("/staff/admin/staff", {"name": "Ana Again", "email": "ana@clinic.example",
                                                  "role": "admin", "password": "a long enough password"})
    assert response.status_code == 400
    summary = html(response).one("div", class_="error-summary")
    assert "There is already an account for ana@clinic.example." in summary.text
    response = admin.post("/staff/admin/staff", {"name": "X", "email": "not-an-email", "role": "coordinator",
                                                  "password": "a long enough password"})
    assert "'not-an-email' is not an email address." in html(response).one("div", class_="error-summary").text
    assert len(audit_rows(app, "staff_add")) == 2  # the two fixture accounts only


def test_disable_and_enable(app, admin, colleague):
    callback_id = add_request(app)
    colleague.post(f"/staff/callbacks/{callback_id}/claim")
    ben = account(app, "ben@clinic.example")
    doc = follow(admin, admin.post(f"/staff/admin/staff/{ben.id}/disable"))
    assert flashes(doc) == ["Done: Ben Carter is disabled: signed out everywhere, and their requests are "
                            "back in the queue."]
    assert [r["Status"] for r in table_rows(doc) if r["Email"] == "ben@clinic.example"] == ["Disabled"]
    assert get_request(app, callback_id).claimed_by_id is None
    assert sign_in_page_redirect(colleague.get("/staff/"))
    assert colleague.sign_in("ben@clinic.example").status_code == 401

    doc = follow(admin, admin.post(f"/staff/admin/staff/{ben.id}/enable"))
    assert flashes(doc) == ["Done: Ben Carter can sign in again."]
    assert colleague.sign_in("ben@clinic.example").status_code == 302
    assert [e.action for e in audit_rows(app) if e.action.startswith("staff_")][-2:] == [
        "staff_disable", "staff_enable"]


def test_an_admin_cannot_disable_themselves(app, admin):
    me = account(app, "dana@clinic.example")
    doc = admin.page("/staff/admin/staff")
    [my_row] = [tr for tr in doc.one("tbody").find_all("tr") if "dana@clinic.example" in tr.text]
    assert my_row.find("button") is None
    doc = follow(admin, admin.post(f"/staff/admin/staff/{me.id}/disable"))
    assert flashes(doc) == ["Not done: You cannot disable your own account. Ask another admin."]
    assert account(app, "dana@clinic.example").active


def test_reset_a_password(app, admin, coordinator):
    ana = account(app, "ana@clinic.example")
    doc = admin.page(f"/staff/admin/staff/{ana.id}/password")
    assert doc.one("h1").text == "New password for Ana Ortiz"
    response = admin.post(f"/staff/admin/staff/{ana.id}/password",
                          {"password": "a brand new password", "confirm": "a different password"})
    assert response.status_code == 400
    assert "The two passwords are not the same." in html(response).text
    doc = follow(admin, admin.post(f"/staff/admin/staff/{ana.id}/password",
                                   {"password": "a brand new password", "confirm": "a brand new password"}))
    assert flashes(doc) == ["Done: New password set for Ana Ortiz. They have been signed out everywhere."]
    assert sign_in_page_redirect(coordinator.get("/staff/"))
    assert coordinator.sign_in("ana@clinic.example", PASSWORD).status_code == 401
    assert coordinator.sign_in("ana@clinic.example", "a brand new password").status_code == 302
    [entry] = audit_rows(app, "staff_password_reset")
    assert (entry.actor, entry.detail) == ("dana@clinic.example", {"email": "ana@clinic.example"})


def test_resetting_my_own_password_signs_me_out(app, admin):
    me = account(app, "dana@clinic.example")
    response = admin.post(f"/staff/admin/staff/{me.id}/password",
                          {"password": "my next password!", "confirm": "my next password!"})
    assert response.headers["Location"] == "/staff/sign-in"
    doc = html(admin.get("/staff/sign-in"))
    assert flashes(doc) == ["Done: Your password is changed. Sign in with the new one."]
    assert admin.sign_in("dana@clinic.example", "my next password!").status_code == 302


# ---- audit log ----------------------------------------------------------------------------------------
def test_audit_log_newest_first_with_who_what_which_and_where(app, admin, coordinator):
    callback_id = add_request(app)
    coordinator.get(f"/staff/callbacks/{callback_id}")
    coordinator.post(f"/staff/callbacks/{callback_id}/claim")
    doc = admin.page("/staff/admin/audit")
    rows = table_rows(doc, "audit-table")
    assert rows[0]["What"] == "Viewed the audit log" and rows[0]["Who"] == "Dana Admin (dana@clinic.example)"
    claim = next(r for r in rows if r["What"] == "Claimed a request")
    assert (claim["Who"], claim["Request"], claim["Address"]) == (
        "Ana Ortiz (ana@clinic.example)", f"#{callback_id}", "127.0.0.1")
    assert doc.find("a", href=f"/staff/callbacks/{callback_id}") is not None
    entries = audit_rows(app)
    assert len(rows) == len(entries) and entries[-1].action == "view_audit"
    assert entries[-1].detail == {"action": "all", "page": 1}


def test_audit_log_filter_and_pages(app, admin):
    with app.app_context():
        for n in range(60):
            audit.record(db.session, "export", actor="cli", detail={"n": n})
        db.session.commit()
    doc = admin.page("/staff/admin/audit?action=export")
    rows = table_rows(doc, "audit-table")
    assert len(rows) == 50 and {r["What"] for r in rows} == {"Exported requests"}
    assert rows[0]["Details"] == "n: 59"
    nav = doc.one("nav", class_="pagination")
    assert "Page 1 of 2" in nav.text
    assert nav.one("a", rel="next").get("href") == "/staff/admin/audit?page=2&action=export"
    rows = table_rows(admin.page("/staff/admin/audit?action=export&page=2"), "audit-table")
    assert [r["Details"] for r in rows] == [f"n: {n}" for n in range(9, -1, -1)]
    assert audit_rows(app, "view_audit")[-1].detail == {"action": "export", "page": 2}


def test_audit_log_escapes_what_strangers_typed(app, admin):
    StaffClient(app).sign_in("<script>alert(1)</script>@x.example", "whatever")
    response = admin.get("/staff/admin/audit?action=sign_in_failed")
    assert "<script>alert(1)" not in response.get_data(as_text=True)
    assert [r["Who"] for r in table_rows(html(response), "audit-table")] == ["<script>alert(1)</script>@x.example"]


# ---- CSV export ---------------------------------------------------------------------------------------
def rows_of(response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.get_data().decode("utf-8-sig"))))


def test_export_a_date_range_in_clinic_time(app, admin):
    def at(*args):
        return dt.datetime(*args, tzinfo=dt.UTC)

    # New York is UTC-5 in mid-November: the clinic's 10 Nov starts at 05:00 UTC.
    add_request(app, phone="+16175550101", created_at=at(2026, 11, 10, 4, 59))  # 9 Nov, 11:59 PM
    first = add_request(app, phone="+16175550102", created_at=at(2026, 11, 10, 5, 0),
                        answers={"coverage": "insurance", "carrier": "=HYPERLINK(\"x\")"})
    last = add_request(app, phone="+16175550103", created_at=at(2026, 11, 13, 4, 59), status="closed",
                       outcome="booked", closed_at=at(2026, 11, 13, 4, 59), voicemail_ok=False)
    add_request(app, phone="+16175550104", created_at=at(2026, 11, 13, 5, 0))  # 13 Nov, midnight
    page = admin.page("/staff/admin/export")
    assert page.one("label", **{"for": "start"}).text == "From (clinic date)"
    response = admin.post("/staff/admin/export", {"start": "2026-11-10", "end": "2026-11-12"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="callback-requests_2026-11-10_to_2026-11-12.csv"')
    rows = rows_of(response)
    assert [int(r["id"]) for r in rows] == [first, last]
    assert rows[0]["phone"] == "+16175550102" and rows[0]["created_at"] == "2026-11-10T05:00:00+00:00"
    assert json.loads(rows[0]["answers"]) == {"coverage": "insurance", "carrier": "=HYPERLINK(\"x\")"}
    assert (rows[1]["status"], rows[1]["outcome"], rows[1]["voicemail_ok"]) == ("closed", "booked", "no")
    assert list(rows[0])[:6] == ["id", "phone", "status", "language", "reason", "call_sid"]
    assert "recording_sid" in rows[0] and "recording_url" not in rows[0]  # no link that plays a voice
    [entry] = audit_rows(app, "export")
    assert entry.actor == "dana@clinic.example"
    assert entry.detail == {"from": "2026-11-10", "to": "2026-11-12", "rows": 2}


def test_export_refuses_a_backwards_range(app, admin):
    response = admin.post("/staff/admin/export", {"start": "2026-11-12", "end": "2026-11-10"})
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert "The last day must be on or after the first day." in html(response).text
    assert html(response).one("title").text.startswith("Error: Export")
    assert html(admin.get("/staff/admin/export")).one("title").text.startswith("Export")
    assert audit_rows(app, "export") == []


def test_export_cells_cannot_become_spreadsheet_formulas():
    assert cell("=cmd|' /C calc'!A0") == "'=cmd|' /C calc'!A0"
    assert cell("@SUM(A1)") == "'@SUM(A1)" and cell("-2+3") == "'-2+3"
    assert cell("+16175550123") == "+16175550123"  # phone numbers stay as they are
    assert cell(None) == "" and cell(True) == "yes" and cell(3) == "3"
