"""What `voiceline db upgrade` (the release step) adds to Alembic on PostgreSQL: one release
at a time, and no long wait for a table lock while calls are coming in.

Release steps can run at once (a deploy retried while the last one runs, two apps on one
database). Each takes a session-level advisory lock before Alembic reads the version table,
so the later ones wait, then find the database at head and do nothing. Without it, two of
three runs on an empty database failed with a UniqueViolation.

An ALTER TABLE queued behind a long transaction holds up every statement that touches the
table after it: webhooks give up after 5 s and answer the fallback. So each migration
statement waits at most LOCK_TIMEOUT_SECONDS for a lock; the release then fails (its
transaction rolls back whole: nothing changed) and can simply be run again. (Once taken,
a lock is held until all the release's migrations commit together.)

SQLite needs neither: a migration there holds the database's one write lock throughout.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

# Any constant bigint will do: advisory locks belong to one database, so only release steps
# on the same database wait for each other. (The bytes of "voicelin".)
MIGRATION_LOCK_KEY = 0x766F6963656C696E
# Under the webhooks' own statement timeout (DB_STATEMENT_TIMEOUT_MS, 5 s by default): a
# webhook queued behind a waiting ALTER TABLE still gets its answer in time.
LOCK_TIMEOUT_SECONDS = 3

_LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's lock_not_available: lock_timeout expired
# The table a migration statement works on: ALTER TABLE x, CREATE INDEX i ON x, REFERENCES x, ...
_STATEMENT_TABLE = re.compile(
    r"\b(?:ALTER\s+TABLE(?:\s+IF\s+EXISTS)?(?:\s+ONLY)?|DROP\s+TABLE(?:\s+IF\s+EXISTS)?|LOCK\s+TABLE"
    r"|TRUNCATE(?:\s+TABLE)?|\bON|REFERENCES|INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?([\w.]+)\"?",
    re.IGNORECASE,
)


@contextmanager
def one_release_at_a_time(connection: Connection) -> Iterator[None]:
    """Around Alembic's whole run on `connection`: wait for any other release step to finish,
    then limit every lock wait of the migrations to LOCK_TIMEOUT_SECONDS."""
    if connection.dialect.name != "postgresql":
        yield
        return
    # The app's short statement_timeout protects webhooks, not migrations (nor this wait).
    connection.exec_driver_sql("SET statement_timeout = 0")
    connection.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")
    # Set only now: waiting for another release step to finish may take longer.
    connection.exec_driver_sql(f"SET lock_timeout = '{LOCK_TIMEOUT_SECONDS}s'")
    connection.commit()
    try:
        yield
    finally:
        _release(connection)


def _release(connection: Connection) -> None:
    """Unlock, and hand the connection back with its usual settings. A session-level advisory
    lock outlives a rollback, so it is released explicitly; if the connection is broken, the
    server has already released it with the session."""
    try:
        connection.rollback()  # a failed migration's transaction
        connection.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")
        connection.exec_driver_sql("RESET ALL")
        connection.commit()
    except DBAPIError:
        connection.invalidate()


def migration_failure(error: DBAPIError) -> str:
    """One line for a failed `voiceline db upgrade`: the database's first line, or for a lock
    wait that timed out, which table and what to do."""
    if getattr(error.orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
        match = _STATEMENT_TABLE.search(error.statement or "")
        table = f"table {match.group(1)}" if match else "a table"
        return (f"could not take a lock on {table} within {LOCK_TIMEOUT_SECONDS} s (a long transaction "
                "holds it; this release changed nothing); retry the release")
    return str(error.orig or error).strip().splitlines()[0]
