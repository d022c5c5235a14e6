"""Every route is behind its blueprint's guard, so a new page cannot ship unguarded.

After GOV.UK Notify's test_all_routes_have_authentication: the voice blueprint checks
Twilio's signature, the staff blueprint needs a signed-in (and recently active) account, and
health is deliberately open. Each /staff/ URL is requested signed out (with a valid CSRF
token, so it is the sign-in guard that answers, not the CSRF check).
"""

import functools
from pathlib import Path

import pytest

from tests.conftest import base_config
from tests.staff import (
    StaffClient,
    audit_rows,
    html,
    sign_in_page_redirect,
)
from voiceline import create_app
from voiceline.staff.blueprint import OPEN_ENDPOINTS, require_recent_sign_in
from voiceline.voice.security import verify_twilio_signature

GUARDS = {"voice": verify_twilio_signature, "staff": require_recent_sign_in}
OPEN_BLUEPRINTS = {"health": {"/healthz"}}  # the platform's health check: no patient data
# Outside any blueprint: Flask's own static route (its folder does not exist, so it serves
# nothing) and the site root, which only redirects to /staff/.
APP_RULES = {"static": "/static/<path:filename>", "root": "/"}
OPEN_STAFF_ENDPOINTS = {"staff.login", "staff.static"}


@functools.cache
def _app():
    """An app for reading its routes (an in-memory database it never uses)."""
    return create_app(base_config("sqlite://"))


def _staff_rules():
    rules = []
    for rule in _app().url_map.iter_rules():
        if rule.endpoint.startswith("staff.") and rule.endpoint not in OPEN_STAFF_ENDPOINTS:
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                rules.append(pytest.param(method, rule, id=f"{method} {rule.rule}"))
    return rules


def _url(rule) -> str:
    """A concrete URL for the rule: 1 for every argument (a valid int and a valid string)."""
    return _app().url_map.bind("localhost").build(rule.endpoint, {name: 1 for name in rule.arguments})


def test_only_known_blueprints_are_registered():
    assert set(_app().blueprints) == {"voice", "staff", "health"}


def test_every_rule_belongs_to_a_guarded_or_deliberately_open_blueprint():
    app = _app()
    for rule in app.url_map.iter_rules():
        blueprint, _, _ = rule.endpoint.rpartition(".")
        if not blueprint:
            assert APP_RULES.get(rule.endpoint) == rule.rule, f"{rule.rule} is outside every blueprint"
        elif blueprint in OPEN_BLUEPRINTS:
            assert rule.rule in OPEN_BLUEPRINTS[blueprint], f"{rule.rule} was added to open {blueprint}"
        else:
            assert blueprint in GUARDS, f"{rule.rule}: blueprint {blueprint} has no guard"
    for blueprint, guard in GUARDS.items():
        assert guard in app.before_request_funcs.get(blueprint, []), f"{blueprint} lost its guard"
    assert OPEN_ENDPOINTS == OPEN_STAFF_ENDPOINTS, "a staff page was let through without sign-in"
    assert not Path(app.static_folder).exists(), "the app-level static route would start serving files"


def test_site_root_only_redirects(app):
    response = app.test_client().get("/", base_url="https://localhost")
    assert response.status_code == 302 and response.headers["Location"] == "/staff/"


@pytest.mark.parametrize("method,rule", _staff_rules())
def test_every_staff_url_needs_sign_in(app, method, rule):
    browser = StaffClient(app)
    browser.get("/staff/sign-in")  # a valid CSRF token for a signed-out session
    url = _url(rule)
    response = browser.get(url) if method == "GET" else browser.post(url)
    assert sign_in_page_redirect(response), (method, url, response.status_code)
    assert [e.action for e in audit_rows(app)] == []  # nothing was looked at or changed


@pytest.mark.parametrize("method,rule", [p for p in _staff_rules() if "/admin/" in p.values[1].rule])
def test_admin_pages_are_refused_to_coordinators(app, coordinator, method, rule):
    url = _url(rule)
    response = coordinator.get(url) if method == "GET" else coordinator.post(url)
    assert response.status_code == 403
    assert html(response).one("h1").text == "Not available to your account"
    assert {e.action for e in audit_rows(app)} <= {"sign_in", "list_callbacks", "staff_add"}


def test_admin_routes_are_marked_admin_only():
    """Admin pages live under /staff/admin/ (plus Reopen) and carry the admin_required check."""
    app = _app()
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        admin_only = getattr(view, "admin_only", False)
        expected = rule.rule.startswith("/staff/admin/") or rule.endpoint == "staff.reopen"
        assert admin_only == expected, rule.rule
