"""GET /healthz: for the platform's health checks. Deliberately unauthenticated and PHI-free."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify
from sqlalchemy.exc import SQLAlchemyError

from voiceline.extensions import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    try:
        db.session.execute(sa.text("SELECT 1"))
        database, code = "ok", 200
    except SQLAlchemyError:
        db.session.rollback()
        database, code = "unreachable", 503
    flow = current_app.extensions["voiceline.flow"]
    body = {"status": "ok" if code == 200 else "degraded", "database": database,
            "prompts_version": flow.prompts_version}
    return jsonify(body), code
