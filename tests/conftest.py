"""Fixtures: an app per test on a migrated database, SQLite always, PostgreSQL when
TEST_DATABASE_URL is set (CI sets it and an unreachable server fails the run)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from voiceline import create_app, init_migrations
from voiceline.extensions import db
from tests.phone import TEST_TOKEN, Phone
from tests.staff import StaffClient, add_staff, closed_hours_app

REPO = Path(__file__).resolve().parent.parent
BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="also run slow fault and load tests")


def pytest_configure(config):
    if config.getoption("--run-slow"):
        os.environ.setdefault("VOICELINE_DEEP_FUZZ", "1")  # tests/test_fuzz_webhooks.py: 400 examples, not 60


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow fault/load test: run with --run-slow (CI does)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


# What production refuses to start without, as test values of the right shape (config.py
# checks SECRET_KEY's length and the auth token's form outside development).
TEST_SECRET_KEY = "test-secret-key-" + "0123456789abcdef"
PATIENT_SERVICES = "+18885668774"
PRODUCTION_SETTINGS = {"VOICELINE_ENV": "production", "SECRET_KEY": TEST_SECRET_KEY,
                       "TWILIO_AUTH_TOKEN": TEST_TOKEN, "PATIENT_SERVICES_NUMBER": PATIENT_SERVICES}


def base_config(database_url: str, **overrides) -> dict:
    config = {
        **PRODUCTION_SETTINGS,
        "TESTING": True,
        "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
        "DATABASE_URL": database_url,
        "BUSINESS_HOURS": "24/7",
        "CLINIC_TIMEZONE": "America/New_York",
        "PROMPTS_DIR": str(REPO / "prompts"),
        "LOG_LEVEL": "WARNING",
    }
    config.update({k: v for k, v in overrides.items() if v is not None})
    return config


def _migrate(url: str) -> None:
    app = create_app(base_config(url))
    init_migrations(app)
    with app.app_context():
        upgrade()
        db.engine.dispose()


def _postgres_database(admin_url: str):
    """A fresh database on the PostgreSQL server for this test session (and xdist worker)."""
    admin = sa.create_engine(admin_url.replace("postgresql://", "postgresql+psycopg://", 1),
                             isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    name = f"voiceline_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        pytest.fail(f"TEST_DATABASE_URL is set but PostgreSQL is unreachable: {exc}", pytrace=False)
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    return admin, name, url


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request, tmp_path_factory):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'voiceline.db'}"
        _migrate(url)
        yield url
        return
    admin, name, url = _postgres_database(os.environ["TEST_DATABASE_URL"])
    _migrate(url)
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def _empty_tables(database_url: str) -> None:
    """Between tests. The audit log refuses DELETE by design, so it is emptied around that:
    TRUNCATE on PostgreSQL (row triggers do not fire), triggers lifted for a moment on SQLite."""
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("TRUNCATE audit_log")
        else:
            triggers = conn.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'").all()
            for name, _ in triggers:
                conn.exec_driver_sql(f"DROP TRIGGER {name}")
            conn.exec_driver_sql("DELETE FROM audit_log")
            for _, sql in triggers:
                conn.exec_driver_sql(sql)
        for table in reversed(db.metadata.sorted_tables):
            if table.name != "audit_log":
                conn.execute(table.delete())
    engine.dispose()


@pytest.fixture
def empty_database_url(database_url, tmp_path):
    """A database never migrated, on the backend of this run's test database (dropped after)."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    admin, name, url = _postgres_database(os.environ["TEST_DATABASE_URL"])
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def make_app(database_url):
    """make_app(BUSINESS_HOURS="closed", ...) -> a configured app on the test database."""
    made = []

    def factory(**overrides):
        app = create_app(base_config(database_url, **overrides))
        made.append(app)
        return app

    yield factory
    for app in made:
        with app.app_context():
            db.engine.dispose()
    if made:
        _empty_tables(database_url)


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def phone(app):
    return Phone(app)


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def closed_app(make_app):
    """Patient services closed (a weekday schedule, Saturday evening): calls end in callback capture."""
    return closed_hours_app(make_app)


# ---- staff, signed in (helpers in tests/staff.py) --------------------------------------------
@pytest.fixture
def coordinator(app) -> StaffClient:
    add_staff(app, "ana@clinic.example", "Ana Ortiz")
    return StaffClient(app).signed_in_as("ana@clinic.example")


@pytest.fixture
def colleague(app) -> StaffClient:
    add_staff(app, "ben@clinic.example", "Ben Carter")
    return StaffClient(app).signed_in_as("ben@clinic.example")


@pytest.fixture
def admin(app) -> StaffClient:
    add_staff(app, "dana@clinic.example", "Dana Admin", role="admin")
    return StaffClient(app).signed_in_as("dana@clinic.example")
