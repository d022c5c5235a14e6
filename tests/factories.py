"""Plain factory functions for tests (rows inserted directly, not through the phone line),
and reading back what the line stored."""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import time
import uuid

import sqlalchemy as sa

from voiceline import auth
from voiceline.extensions import db
from voiceline.models import CallbackRequest, StaffUser, now_utc

PASSWORD = "correct horse battery"
_numbers = itertools.count(100)


@functools.cache
def _hash(password: str) -> str:
    return auth.hash_password(password)  # scrypt is slow on purpose: hash each password once per run


def staff(app, email: str = "coordinator@clinic.example", *, name: str = "Casey Coordinator",
          role: str = "coordinator", password: str = PASSWORD) -> StaffUser:
    """A staff account inserted directly (auth.add_staff, with its audit entry, is tested on its own)."""
    with app.app_context():
        user = StaffUser(email=email, name=name, role=role, password_hash=_hash(password))
        db.session.add(user)
        db.session.commit()
        db.session.refresh(user)
        db.session.expunge(user)
        return user


def callback(app, *, phone: str | None = None, priority: int = 10, age: dt.timedelta = dt.timedelta(hours=1),
             reason: str = "candidacy", language: str = "en", status: str = "open", **extra) -> int:
    with app.app_context():
        request = CallbackRequest(
            phone=phone or f"+1617555{next(_numbers):04d}", status=status, language=language, reason=reason,
            priority=priority, requested_by_caller=True, call_sid="CA" + uuid.uuid4().hex,
            prompts_version="test", created_at=now_utc() - age,
            answers=extra.pop("answers", {"age_18_or_older": "yes"}), **extra)
        db.session.add(request)
        db.session.commit()
        return request.id


def stored_requests(app) -> list[CallbackRequest]:
    """Every callback request in the database, oldest first."""
    with app.app_context():
        return db.session.scalars(sa.select(CallbackRequest).order_by(CallbackRequest.id)).all()


def wait_until_a_query_waits_for_a_lock(app, who: str, deadline_seconds: float = 10.0) -> None:
    """PostgreSQL: until another connection is blocked on a lock. SQLite cannot tell, so this
    returns at once: there the two sides may well run one after the other, and a test using it
    shows on SQLite only that either order ends right (the race itself is PostgreSQL's run)."""
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            return
        deadline = time.monotonic() + deadline_seconds
        # Autocommit: inside one transaction PostgreSQL would show the same snapshot of
        # pg_stat_activity every time.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            while not conn.scalar(sa.text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                          "AND datname = current_database()")):
                assert time.monotonic() < deadline, f"{who} never waited for the other transaction"
                time.sleep(0.01)
