"""Voiceline: the telephone intake line of a network of ketamine-infusion clinics."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dotenv import find_dotenv, load_dotenv
from flask import Flask, redirect, request, url_for
from werkzeug.middleware.proxy_fix import ProxyFix

from voiceline.config import ConfigError, load_settings
from voiceline.flow.engine import Engine
from voiceline.flow.prompts import FlowError, load_flow
from voiceline.logs import configure_logging
from voiceline.sessions import StaffSessionInterface
from voiceline.voice.security import FormRequestValidator
from voiceline.models.base import now_utc

StartupError = (ConfigError, FlowError)

MAX_REQUEST_BYTES = 256 * 1024


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. `config` replaces the environment (tests); None reads env and .env.

    Raises ConfigError or FlowError, each naming what to fix, before serving anything.
    """
    app = Flask(__name__, instance_relative_config=True)
    app.session_interface = StaffSessionInterface()
    testing = config is not None and config.get("TESTING") is True
    if config is None:
        load_dotenv(find_dotenv(usecwd=True))
        config = os.environ
    app.config.update(load_settings(config, Path(app.instance_path)))
    # Only a test's own mapping turns on Flask's testing mode (exceptions reach the test):
    # never the environment, where TESTING=0 would have read as true.
    app.config["TESTING"] = testing
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    if app.config["TRUSTED_PROXIES"]:
        # Behind a router (Heroku's, a load balancer) every request comes from its address:
        # the sign-in throttle and the audit log need the client's, from X-Forwarded-For.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["TRUSTED_PROXIES"])
    configure_logging(app.config["LOG_LEVEL"])
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///"):
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    flow = load_flow(app.config["PROMPTS_DIR"])
    app.extensions["voiceline.flow"] = flow
    app.extensions["voiceline.engine"] = Engine(flow)
    app.extensions["voiceline.validator"] = FormRequestValidator(app.config["TWILIO_AUTH_TOKEN"])
    app.extensions["voiceline.clock"] = now_utc  # what "now" is for business hours

    register_extensions(app)
    register_blueprints(app)
    register_commands(app)
    return app


def register_extensions(app: Flask) -> None:
    from voiceline import auth  # noqa: F401  (registers the Flask-Login user loader)
    from voiceline.database import init_database
    from voiceline.extensions import csrf, db, login_manager

    db.init_app(app)
    csrf.init_app(app)
    login_manager.init_app(app)
    init_database(app)


def register_blueprints(app: Flask) -> None:
    """Each blueprint with its guard: voice checks Twilio's signature, staff needs a signed-in
    user, health is deliberately open (tests/test_auth_guards.py keeps it that way)."""
    from voiceline import health, staff, voice
    from voiceline.extensions import csrf
    from voiceline.voice import twiml
    from voiceline.voice.breaker import Breaker

    twiml.init_app(app)
    app.extensions["voiceline.breaker"] = Breaker()
    csrf.exempt(voice.bp)  # Twilio cannot send a CSRF token; its signature guards these routes
    app.url_map.merge_slashes = False  # a mangled action URL gets TwiML, not a 308 redirect
    app.register_blueprint(voice.bp)
    app.register_error_handler(404, unmatched_url)
    app.register_error_handler(405, unmatched_url)
    app.register_blueprint(staff.bp)
    app.register_blueprint(health.bp)
    app.add_url_rule("/", endpoint="root", view_func=_to_staff_pages)


def unmatched_url(error):
    """404/405 for a URL no route serves, answered by the part of the site it belongs to:
    Twilio gets TwiML back to the menu (signed) or 403, staff a friendly page, others Flask's."""
    from voiceline import staff, voice

    if request.path.startswith(voice.bp.url_prefix + "/"):
        return voice.unknown_voice_url(error)
    if request.path.startswith(staff.bp.url_prefix + "/") and error.code == 404:
        return staff.not_found(error)
    return error


def _to_staff_pages():
    """The site root only points at the staff pages (which then ask for sign-in); it shows nothing."""
    return redirect(url_for("staff.queue"))


MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def init_migrations(app: Flask) -> None:
    """Flask-Migrate (and with it Alembic, about 10 MB) for the `voiceline db` commands only.

    The CLI calls this; web workers never import Alembic. Tests call it to migrate.
    """
    from flask_migrate import Migrate

    from voiceline.extensions import db

    Migrate(app, db, directory=str(MIGRATIONS_DIR))


def register_commands(app: Flask) -> None:
    from voiceline.commands import register

    register(app)
