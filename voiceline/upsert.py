"""INSERT ... ON CONFLICT for PostgreSQL and SQLite: how webhooks stay idempotent.

Twilio retries a webhook that timed out; the retry carries the same CallSid and step number,
so an insert keyed on them does nothing the second time.

These run on every webhook, so they are Core statements built once per (table, columns,
dialect) and executed with fresh parameters: on the session's connection when they are part
of a transaction, and on their own (voiceline.autocommit) for the common single-row step.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from voiceline.autocommit import Autocommit

# Where a write goes: a session (its transaction), or committed on its own.
Target = Session | Autocommit

_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def _dialect(target: Target) -> str:
    name = (target if isinstance(target, Autocommit) else target.get_bind()).dialect.name
    if name not in _INSERTS:
        raise RuntimeError(f"unsupported database dialect {name!r}")
    return name


def first_row(target: Target, stmt: sa.Executable, values: dict[str, Any]) -> tuple | None:
    """Run a cached statement where `target` writes; its first row, if it returns rows."""
    if isinstance(target, Autocommit):
        return target.first(stmt, values)
    result = target.connection().execute(stmt, values)  # Core on the session's connection: no autoflush
    return result.first() if result.returns_rows else None


@functools.cache
def _insert_ignore_statement(dialect: str, table: sa.Table, columns: tuple[str, ...], conflict: tuple[str, ...],
                             where: sa.TextClause | None):
    key = table.primary_key.columns.values()[0]
    stmt = _INSERTS[dialect](table).values({c: sa.bindparam(c) for c in columns})
    # RETURNING tells us whether a row was inserted: drivers report rowcount -1 for it.
    return stmt.on_conflict_do_nothing(index_elements=list(conflict), index_where=where).returning(key)


def insert_new(target: Target, model: type, values: dict[str, Any], conflict: list[str],
               where: sa.TextClause | None = None) -> Any | None:
    """Insert a row unless one with the same `conflict` columns exists (among the rows a
    partial unique index covers, when `where` is its condition); the new row's key, or None."""
    stmt = _insert_ignore_statement(_dialect(target), model.__table__, tuple(values), tuple(conflict), where)
    row = first_row(target, stmt, values)
    return None if row is None else row[0]


def insert_ignore(target: Target, model: type, values: dict[str, Any], conflict: list[str]) -> bool:
    """Insert a row unless one with the same `conflict` columns exists; True if inserted."""
    return insert_new(target, model, values, conflict) is not None


@functools.cache
def _insert_or_update_statement(dialect: str, table: sa.Table, columns: tuple[str, ...], conflict: tuple[str, ...],
                                update: tuple[str, ...]):
    stmt = _INSERTS[dialect](table).values({c: sa.bindparam(c) for c in columns})
    return stmt.on_conflict_do_update(index_elements=list(conflict), set_={c: stmt.excluded[c] for c in update})


def insert_or_update(target: Target, model: type, values: dict[str, Any], conflict: list[str],
                     update: list[str]) -> None:
    """Insert a row, or give the existing row with the same `conflict` columns the new values
    of the `update` columns. A cached statement, like insert_ignore: webhooks use it."""
    stmt = _insert_or_update_statement(_dialect(target), model.__table__, tuple(values), tuple(conflict),
                                       tuple(update))
    first_row(target, stmt, values)


def upsert(session: Session, model: type, values: dict[str, Any], conflict: list[str],
           update: dict[str, Any], *, where: sa.ColumnElement[bool] | None = None,
           returning: list[sa.ColumnElement] | None = None) -> tuple | None:
    """Insert a row, or update the row with the same `conflict` columns with `update`, whose
    values may be SQL expressions (built afresh each time: for rare writes, like sign-in).
    With `where`, an existing row is updated only if it holds (else nothing is written). With
    `returning`, those columns of the row written, or None when nothing was."""
    stmt = _INSERTS[_dialect(session)](model.__table__).values(**values)
    stmt = stmt.on_conflict_do_update(index_elements=conflict, set_=update, where=where)
    if returning is None:
        session.connection().execute(stmt)
        return None
    return session.connection().execute(stmt.returning(*returning)).first()
