"""Helpers for the staff UI tests: a signed-in browser-like client that keeps the CSRF token
from the last page, an HTML tree to assert on, and data factories. The signed-in fixtures
(coordinator, colleague, admin) are in conftest.py.

The app runs with production cookie settings (Secure cookies, CSRF with the https referrer
check), so the client talks https and sends a same-origin Referer, as a browser would.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from html.parser import HTMLParser
from unittest import mock

import sqlalchemy as sa
from jinja2 import BytecodeCache
from werkzeug.security import generate_password_hash

from tests.phone import SATURDAY_EVENING, Phone
from voiceline import auth
from voiceline.extensions import db
from voiceline.models import AuditEntry, CallbackRequest, now_utc

BASE = "https://localhost"
PASSWORD = "correct horse battery staple"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


# ---- HTML ------------------------------------------------------------------------------------------
class Element:
    def __init__(self, tag: str, attrs: dict[str, str | None], parent: Element | None):
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Element | str] = []

    def get(self, name: str, default=None):
        return self.attrs.get(name, default)

    @property
    def text(self) -> str:
        """Visible text, whitespace collapsed (entities already decoded)."""
        parts: list[str] = []

        def walk(node):
            for child in node.children:
                if isinstance(child, str):
                    parts.append(child)
                else:
                    walk(child)

        walk(self)
        return re.sub(r"\s+", " ", "".join(parts)).strip()

    def iter(self):
        for child in self.children:
            if isinstance(child, Element):
                yield child
                yield from child.iter()

    def find_all(self, tag: str | None = None, **attrs) -> list[Element]:
        """Elements by tag and attributes; class_="x" matches one class among several."""
        found = []
        for el in self.iter():
            if tag is not None and el.tag != tag:
                continue
            ok = True
            for name, value in attrs.items():
                name = name.rstrip("_").replace("_", "-")
                have = el.get(name)
                if name == "class":
                    ok = have is not None and value in have.split()
                elif value is True:
                    ok = name in el.attrs
                else:
                    ok = have == value
                if not ok:
                    break
            if ok:
                found.append(el)
        return found

    def find(self, tag: str | None = None, **attrs) -> Element | None:
        found = self.find_all(tag, **attrs)
        return found[0] if found else None

    def one(self, tag: str | None = None, **attrs) -> Element:
        found = self.find_all(tag, **attrs)
        assert len(found) == 1, f"expected one <{tag} {attrs}>, found {len(found)}"
        return found[0]

    def __repr__(self):
        return f"<{self.tag} {self.attrs}>"


class _TreeBuilder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {}, None)
        self.current = self.root

    def handle_starttag(self, tag, attrs):
        el = Element(tag, dict(attrs), self.current)
        self.current.children.append(el)
        if tag not in VOID:
            self.current = el

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Element(tag, dict(attrs), self.current))

    def handle_endtag(self, tag):
        node = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data):
        self.current.children.append(data)


def html(response) -> Element:
    builder = _TreeBuilder()
    builder.feed(response.get_data(as_text=True))
    builder.close()
    return builder.root


def flashes(doc: Element) -> list[str]:
    return [el.text for el in doc.find_all("div", class_="flash")]


def table_rows(doc: Element, table_class: str | None = None) -> list[dict[str, str]]:
    """Each <tbody> row as {data-label: text}."""
    table = doc.find("table", class_=table_class) if table_class else doc.find("table")
    if table is None:
        return []
    rows = []
    for tr in table.find("tbody").find_all("tr"):
        rows.append({cell.get("data-label"): cell.text for cell in tr.children
                     if isinstance(cell, Element) and cell.tag in ("td", "th")})
    return rows


# ---- a browser-like client -----------------------------------------------------------------------
class _SharedBytecode(BytecodeCache):
    """Compiled templates shared by the many apps a test run makes (keys include the source's
    checksum, so an edited template is compiled afresh)."""

    def __init__(self):
        self.store: dict[str, bytes] = {}

    def load_bytecode(self, bucket):
        if bucket.key in self.store:
            bucket.bytecode_from_string(self.store[bucket.key])

    def dump_bytecode(self, bucket):
        self.store[bucket.key] = bucket.bytecode_to_string()


_TEMPLATES = _SharedBytecode()


class StaffClient:
    def __init__(self, app):
        self.app = app
        app.jinja_env.bytecode_cache = _TEMPLATES
        self.client = app.test_client()
        self.client.environ_base["HTTP_REFERER"] = BASE + "/staff/"
        self.token: str | None = None
        self.last = None

    def _remember(self, response):
        self.last = response
        if response.mimetype == "text/html":
            match = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', response.get_data(as_text=True))
            if match:
                self.token = match.group(1)
        return response

    def get(self, path: str, **kwargs):
        return self._remember(self.client.get(path, base_url=BASE, **kwargs))

    def post(self, path: str, data: dict | None = None, *, csrf: bool = True, **kwargs):
        data = dict(data or {})
        if csrf:
            if self.token is None:  # any page with a form has one (signed in, this lands on the queue)
                self.get("/staff/sign-in", follow_redirects=True)
            data.setdefault("csrf_token", self.token)
        response = self._remember(self.client.post(path, data=data, base_url=BASE, **kwargs))
        if path.startswith(("/staff/sign-in", "/staff/sign-out")) and response.status_code == 302:
            self.token = None  # a new session: the old token is void
        return response

    def page(self, path: str, status: int = 200) -> Element:
        response = self.get(path)
        assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:2000])
        return html(response)

    def sign_in(self, email: str, password: str = PASSWORD, next_path: str | None = None):
        url = "/staff/sign-in" + (f"?next={next_path}" if next_path else "")
        self.get(url)
        return self.post(url, {"email": email, "password": password})

    def signed_in_as(self, email: str) -> StaffClient:
        response = self.sign_in(email)
        assert response.status_code == 302, html(response).text
        self.get(response.headers["Location"])  # a page with a fresh CSRF token
        return self


def sign_in_page_redirect(response) -> bool:
    return response.status_code == 302 and response.headers["Location"].startswith("/staff/sign-in")


def follow(browser: StaffClient, response) -> Element:
    """The page a form's redirect leads to (where its confirmation message shows)."""
    assert response.status_code == 302, html(response).text
    return html(browser.get(response.headers["Location"]))


# ---- data -------------------------------------------------------------------------------------------
def _quick_hash(password: str, method: str = "scrypt", salt_length: int = 16) -> str:
    return generate_password_hash(password, method="scrypt:1024:8:1", salt_length=salt_length)


def add_staff(app, email: str, name: str, role: str = "coordinator", password: str = PASSWORD) -> int:
    """An account made the way the CLI makes one, with a cheap scrypt cost: the UI tests sign
    in hundreds of times, and the hash records its own cost, so checking it is cheap too."""
    with app.app_context(), mock.patch.object(auth, "generate_password_hash", _quick_hash):
        staff = auth.add_staff(db.session, email, name, role, password, actor="test")
        db.session.commit()
        return staff.id


def staff_id(app, email: str) -> int:
    with app.app_context():
        return auth.find_staff(db.session, email).id


_numbers = iter(range(1000, 10_000))


def new_phone() -> str:
    return f"+1617555{next(_numbers):04d}"


def add_request(app, **fields) -> int:
    """A callback request row, as intake would store it (fields override the defaults)."""
    values = dict(phone=new_phone(), language="en", reason="candidacy", call_sid="CA" + uuid.uuid4().hex,
                  prompts_version="test", preferred_window="morning", voicemail_ok=True,
                  answers={"age_18_or_older": "yes", "mood_disorder_diagnosis": "yes"})
    values.update(fields)
    with app.app_context():
        item = CallbackRequest(**values)
        db.session.add(item)
        db.session.commit()
        return item.id


def get_request(app, callback_id: int) -> CallbackRequest:
    with app.app_context():
        item = db.session.get(CallbackRequest, callback_id)
        db.session.expunge(item)
        return item


def audit_rows(app, action: str | None = None) -> list[AuditEntry]:
    with app.app_context():
        stmt = sa.select(AuditEntry).order_by(AuditEntry.id)
        if action:
            stmt = stmt.where(AuditEntry.action == action)
        rows = db.session.scalars(stmt).all()
        db.session.expunge_all()
        return rows


def ago(**delta) -> dt.datetime:
    return now_utc() - dt.timedelta(**delta)


def closed_hours_app(make_app):
    """Patient services closed (Saturday evening), so calls end as callback requests."""
    app = make_app(BUSINESS_HOURS="Mon-Fri 08:00-18:00")
    app.extensions["voiceline.clock"] = lambda: SATURDAY_EVENING
    return app


def candidacy_call(app, *, from_number: str = "+16175550123", answers=("1", "1", "1", "1", "2"),
                   window: str = "1", message: bool = False, other_number: str | None = None) -> Phone:
    """A real call through the line ending in a callback request (needs closed hours).
    `window` is the key for the preferred time (1 mornings, 3 evenings); with `other_number`,
    the caller keys it in (and confirms it) instead of their own."""
    phone = Phone(app, from_number=from_number)
    phone.call()
    phone.press_through("1", "1", *answers)
    if other_number:
        phone.press_through("2", other_number, "1")  # another number: key it in, confirm it
    else:
        phone.press("1")  # this number
    phone.press_through(window, "2")  # the window; no clinic name on voicemail
    phone.press("1" if message else "2")
    if message:
        record = phone.doc.find("Record")
        sid = "RE" + uuid.uuid4().hex
        url = f"https://api.twilio.com/2010-04-01/Accounts/AC{'1' * 32}/Recordings/{sid}"
        phone.post(record.get("action"), RecordingSid=sid, RecordingUrl=url, RecordingDuration="12", Digits="#")
        phone.recording_sid, phone.recording_url = sid, url
    phone.hang_up()
    return phone
