"""INSERT ... ON CONFLICT for PostgreSQL and SQLite: how webhooks stay idempotent.

Twilio retries a webhook that timed out; the retry carries the same CallSid and step number,
so an insert keyed on them does nothing the second time.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def _insert(session: Session, model: type):
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise RuntimeError(f"unsupported database dialect {dialect!r}")


def insert_ignore(session: Session, model: type, values: dict[str, Any], conflict: list[str]) -> bool:
    """Insert a row unless one with the same `conflict` columns exists; True if inserted.

    Asks for the new id with RETURNING rather than trusting rowcount, which drivers report
    as -1 for statements that return rows.
    """
    key = model.__table__.primary_key.columns.values()[0]
    stmt = _insert(session, model).values(**values).on_conflict_do_nothing(index_elements=conflict)
    return session.execute(stmt.returning(key)).first() is not None


def upsert(session: Session, model: type, values: dict[str, Any], conflict: list[str],
           update: dict[str, Any]) -> None:
    """Insert a row, or update `update` columns of the row that has the same `conflict` columns."""
    stmt = _insert(session, model).values(**values)
    stmt = stmt.on_conflict_do_update(index_elements=conflict, set_=update)
    session.execute(stmt)
