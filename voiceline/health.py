"""GET /healthz: for the platform's health checks. Deliberately unauthenticated and PHI-free.

It answers 503 when the line cannot take calls properly: the database does not answer, or it
was never migrated, or its schema is older than this code (the release step, `voiceline db
upgrade`, did not run). A schema newer than this code is fine: an old dyno still serving
during a deploy whose release step already ran.
"""

from __future__ import annotations

from importlib import metadata

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify
from sqlalchemy.exc import SQLAlchemyError

from voiceline.extensions import db

bp = Blueprint("health", __name__)

# The newest migration this code needs. Web workers never load Alembic (about 10 MB), so
# it is written here; tests/test_migrations.py holds it to Alembic's own head. Revisions are
# named NNNN_..., so their order is the order of their numbers.
SCHEMA_REVISION = "0005_callback_last_attempt_at"
VERSION = metadata.version("voiceline")  # which release a dyno runs, next to its prompts


def _schema() -> tuple[str, bool]:
    """(what to report, whether calls can be served on it)."""
    try:
        revision = db.session.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError:
        db.session.rollback()
        revision = None
    if not revision:
        return "not set up: run voiceline db upgrade", False
    if revision == SCHEMA_REVISION:
        return "ok", True
    if revision[:4].isdigit() and revision[:4] < SCHEMA_REVISION[:4]:
        return f"behind ({revision}, this code needs {SCHEMA_REVISION}): run voiceline db upgrade", False
    return f"newer than this code ({revision})", True


@bp.get("/healthz")
def healthz():
    try:
        db.session.execute(sa.text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        database, ok = "unreachable", False
    else:
        database, ok = _schema()
    flow = current_app.extensions["voiceline.flow"]
    body = {"status": "ok" if ok else "degraded", "database": database, "version": VERSION,
            "prompts_version": flow.prompts_version}
    return jsonify(body), 200 if ok else 503
