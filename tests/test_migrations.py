"""Migrations: the head is the newest file, and the migrated schema is exactly the models."""

import re
from pathlib import Path

import pytest

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import Migrate

from voiceline import init_migrations
from voiceline.extensions import db

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


def test_migrated_database_matches_the_models(app):
    """Run against the test database, which conftest built with the real migrations."""
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, db.metadata)
    assert differences == []


def test_migrate_directory_is_absolute(app):
    assert Path(app.extensions["migrate"].directory).is_absolute()
    assert isinstance(app.extensions["migrate"].migrate, Migrate)
