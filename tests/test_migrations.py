"""Migrations: the head is the newest file, and the migrated schema is exactly the models."""

import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import Migrate

from voiceline import init_migrations
from voiceline.extensions import db
from voiceline.health import SCHEMA_REVISION

VERSIONS = Path(__file__).resolve().parent.parent / "migrations" / "versions"


@pytest.fixture
def app(app):
    init_migrations(app)
    return app


def test_web_workers_do_not_load_alembic(make_app):
    """Alembic costs every worker about 10 MB; only the CLI sets up Flask-Migrate."""
    assert "migrate" not in make_app().extensions


def test_head_revision_is_the_newest_file(app):
    files = sorted(p.stem for p in VERSIONS.glob("[0-9][0-9][0-9][0-9]_*.py"))
    assert files and all(re.match(r"^\d{4}_[a-z0-9_]+$", f) for f in files)
    with app.app_context():
        config = app.extensions["migrate"].migrate.get_config()
        assert ScriptDirectory.from_config(config).get_heads() == [files[-1]]
    assert SCHEMA_REVISION == files[-1]  # /healthz knows the head without loading Alembic


def _set_revision(app, revision: str | None) -> None:
    with app.app_context():
        db.session.execute(sa.text("DELETE FROM alembic_version"))
        if revision:
            db.session.execute(sa.text("INSERT INTO alembic_version (version_num) VALUES (:r)"), {"r": revision})
        db.session.commit()


@pytest.mark.parametrize(("revision", "status", "says"), [
    (None, 503, "not set up: run voiceline db upgrade"),
    ("0002_staff_queue", 503, "behind (0002_staff_queue, this code needs"),
    ("9999_from_a_newer_release", 200, "newer than this code (9999_from_a_newer_release)"),
])
def test_healthz_tells_a_database_the_code_cannot_use(app, revision, status, says):
    try:
        _set_revision(app, revision)
        response = app.test_client().get("/healthz")
        assert response.status_code == status
        assert response.get_json()["database"].startswith(says)
    finally:
        _set_revision(app, SCHEMA_REVISION)
    assert app.test_client().get("/healthz").get_json()["database"] == "ok"


def test_healthz_on_a_database_never_migrated(make_app, tmp_path):
    response = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'empty.db'}").test_client().get("/healthz")
    assert (response.status_code, response.get_json()["database"]) == (503, "not set up: run voiceline db upgrade")


def test_migrated_database_matches_the_models(app):
    """Run against the test database, which conftest built with the real migrations."""
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, db.metadata)
    assert differences == []


def test_migrate_directory_is_absolute(app):
    assert Path(app.extensions["migrate"].directory).is_absolute()
    assert isinstance(app.extensions["migrate"].migrate, Migrate)
