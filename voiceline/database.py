"""Per-connection database settings."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import event

from voiceline.extensions import db


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets web workers read while one writes; NORMAL sync is durable across app crashes
    # (only an OS crash can lose the last transactions); foreign keys are off by default.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def init_database(app: Flask) -> None:
    with app.app_context():
        engine = db.engine
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
