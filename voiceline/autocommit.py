"""One statement, committed on its own, on a pooled DB-API connection: the webhooks' writes.

Most webhooks write one row and nothing else (a step, the call's row, a recording), and the
status callback closes most calls with one UPDATE. Through SQLAlchemy's Connection each such
statement costs about 0.1 ms of CPU in execution context and result objects (bench/README.md),
more than the database takes to run it. Here SQLAlchemy still does what it is for, once per
(statement, dialect): the SQL text, the parameter order and each column type's bind
processor. The pool is SQLAlchemy's too, with its checkout ping (voiceline/database.py). What
the Connection would add on failure is kept: errors come out as sqlalchemy.exc.DBAPIError
(parameters hidden: they are caller data), and a lost connection is invalidated, so the
circuit breaker and the pool behave as they do for every other statement.

Use it for a statement that stands alone, given every column's value (Python-side column
defaults are not applied; such a statement is refused). Writes that must stand or fall
together go through the session's transaction (see voice/views.py `_writes`). SQLAlchemy's
engine events (before_cursor_execute, handle_error) do not fire for these statements: SQL
instrumentation added later must hook the pool's connections (bench/scenarios.py traces them
with sqlite3's trace callback).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


@dataclass
class Prepared:
    """A statement as the driver takes it."""

    sql: str
    positional: bool  # the driver's paramstyle: a list in `keys` order, or a dict
    keys: tuple[str, ...]  # its parameters by SQLAlchemy's names, in the order the SQL wants them
    names: tuple[str, ...]  # the same as the driver knows them (a name may be escaped in the SQL)
    processors: tuple[Callable[[Any], Any] | None, ...]  # each parameter's bind processor
    literals: dict[str, Any]  # values the statement carries itself (`Call.outcome == "missed"`)
    # Whether it returns rows (RETURNING, SELECT): learnt from the cursor on its first run, as
    # psycopg builds cursor.description afresh each time it is asked.
    returns_rows: bool | None = None

    def parameters(self, values: Mapping[str, Any]) -> list | dict:
        given = {**self.literals, **values}
        processed = [p(given[k]) if p else given[k] for k, p in zip(self.keys, self.processors)]
        return processed if self.positional else dict(zip(self.names, processed))


@functools.lru_cache(maxsize=128)  # (statement, dialect): a handful per engine
def _prepared(statement: sa.Executable, dialect: Dialect) -> Prepared:
    compiled = statement.compile(dialect=dialect)
    if "POSTCOMPILE" in compiled.string:  # an IN (...) list is rendered per execution
        raise ValueError("autocommit statements take no expanding IN parameters")
    if compiled.insert_prefetch or compiled.update_prefetch:
        raise ValueError("autocommit statements get every value from the caller: column defaults "
                         "computed in Python are not applied here")
    binds = {name: bind for bind, name in compiled.bind_names.items()}
    keys = tuple(compiled.positiontup) if compiled.positional else tuple(binds)
    escaped = compiled.escaped_bind_names or {}
    processors = tuple(binds[k].type.dialect_impl(dialect).bind_processor(dialect) for k in keys)
    literals = {name: bind.effective_value for name, bind in binds.items() if not bind.required}
    return Prepared(compiled.string, compiled.positional, keys, tuple(escaped.get(k, k) for k in keys),
                    processors, literals)


# How each driver's connection is switched to autocommit: (attribute, value). Set and put
# back directly: SQLAlchemy's set_isolation_level/reset_isolation_level would also run
# "PRAGMA read_uncommitted" on SQLite, one more statement per write for a setting we never change.
_AUTOCOMMIT_SWITCHES = {"sqlite": ("isolation_level", None), "postgresql": ("autocommit", True)}


class Autocommit:
    """A writer for store functions (upsert.insert_ignore and friends): each statement is
    committed as it runs, on a connection taken from the engine's pool and given back."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self.dialect = engine.dialect
        if self.dialect.name not in _AUTOCOMMIT_SWITCHES:
            raise RuntimeError(f"no autocommit switch for database dialect {self.dialect.name!r}")
        self._switch, self._on = _AUTOCOMMIT_SWITCHES[self.dialect.name]

    def first(self, statement: sa.Executable, values: Mapping[str, Any]) -> tuple | None:
        """Run a cached Core statement with `values`; its first row (RETURNING) as the driver
        returns it (no result processing: callers ask only whether there was one), or None."""
        dialect = self.dialect
        prepared = _prepared(statement, dialect)
        sql, params = prepared.sql, prepared.parameters(values)
        pooled = self._checkout()
        dbapi_connection = pooled.driver_connection
        cursor = None
        try:
            before = getattr(dbapi_connection, self._switch)
            setattr(dbapi_connection, self._switch, self._on)
            try:
                cursor = dbapi_connection.cursor()
                cursor.execute(sql, params)
                if prepared.returns_rows is None:
                    prepared.returns_rows = cursor.description is not None
                return cursor.fetchone() if prepared.returns_rows else None
            finally:
                self._give_back(pooled, cursor, before)
        except dialect.loaded_dbapi.Error as error:
            lost = not pooled.is_valid or dialect.is_disconnect(error, dbapi_connection, cursor)
            if pooled.is_valid and lost:
                pooled.invalidate(error)
            raise self._wrapped(error, sql, params, lost) from error
        finally:
            pooled.close()

    def _give_back(self, pooled, cursor, before) -> None:
        """Undo autocommit before the pool takes the connection back. If that fails, the
        connection is dropped rather than pooled in an unknown state; the statement's own
        outcome (its row, or its error) is what the caller gets either way."""
        try:
            if cursor is not None:
                cursor.close()
            setattr(pooled.driver_connection, self._switch, before)
        except self.dialect.loaded_dbapi.Error as error:
            pooled.invalidate(error)

    def _checkout(self):
        """A pooled connection; its checkout events (the ping) run here. A failure to connect
        comes out as Connection.connect() would give it: a DBAPIError with no statement."""
        try:
            return self.engine.raw_connection()
        except self.dialect.loaded_dbapi.Error as error:
            raise self._wrapped(error, None, None, self.dialect.is_disconnect(error, None, None)) from error

    def _wrapped(self, error: Exception, sql: str | None, params, lost: bool) -> sa.exc.DBAPIError:
        return sa.exc.DBAPIError.instance(
            sql, params, error, self.dialect.loaded_dbapi.Error,
            hide_parameters=True, connection_invalidated=lost, dialect=self.dialect,
        )
