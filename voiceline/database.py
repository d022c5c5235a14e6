"""Per-connection database settings, and the transaction and ping behaviour the webhooks rely on.

SQLite: pragmas, and transactions kept whole under sqlite3's legacy transaction control.
PostgreSQL: a checkout ping with a deadline, so a server that stops answering costs a webhook
seconds, not Twilio's whole timeout.
"""

from __future__ import annotations

import select
import time

from flask import Flask
from sqlalchemy import event, exc

from voiceline.extensions import db

# How long a pooled PostgreSQL connection may take to answer the checkout ping. With the
# 3 s connect_timeout of a reconnect, a webhook facing a database that stopped answering
# gives up after about 5 s, well before Twilio does (15 s).
PING_TIMEOUT_SECONDS = 2.0


def is_outage(error: BaseException) -> bool:
    """A failure to reach the database, as opposed to an error in a statement (a lock timeout,
    a constraint): only those open the breaker."""
    if isinstance(error, (exc.DisconnectionError, exc.TimeoutError)):  # pool checkout gave up
        return True
    if isinstance(error, exc.DBAPIError):
        return error.connection_invalidated or error.statement is None  # lost, or never connected
    return False


# PostgreSQL's undefined_table and undefined_column; SQLite says it in words.
_SCHEMA_MISSING_STATES = {"42P01", "42703"}


def schema_missing(error: BaseException) -> bool:
    """A statement failed because a table or column is not there: the database was never
    migrated, or is behind this code (`voiceline db upgrade` did not run)."""
    if not isinstance(error, exc.DBAPIError):
        return False
    if getattr(error.orig, "sqlstate", None) in _SCHEMA_MISSING_STATES:
        return True
    return str(error.orig).startswith(("no such table", "no such column"))


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets web workers read while one writes; NORMAL sync is durable across app crashes
    # (only an OS crash can lose the last transactions); foreign keys are off by default.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _begin_immediately(connection) -> None:
    if not connection.connection.dbapi_connection.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_savepoint(connection, _name) -> None:
    """A SAVEPOINT (Session.begin_nested) inside the transaction, never beginning its own.

    sqlite3's legacy transaction control issues BEGIN only before an INSERT, UPDATE or
    DELETE. A SAVEPOINT that comes first starts a transaction of its own and its RELEASE
    commits it: half of a webhook's writes visible at once (a callback request a coordinator
    can close before its call links to it), and kept on rollback.
    """
    _begin_immediately(connection)


def _sqlite_for_update(connection, statement, *_args) -> None:
    """SELECT ... FOR UPDATE inside the transaction, holding SQLite's one write lock.

    SQLite has no row locks and drops FOR UPDATE, and in legacy transaction control a read
    before the first write runs outside the transaction. The write lock taken before the read
    is the lock FOR UPDATE asks for: nobody can close the open request a repeat caller is
    being merged into between the read and the merge.
    """
    if getattr(statement, "_for_update_arg", None) is not None:
        _begin_immediately(connection)


def _mark_fresh(_dbapi_connection, record) -> None:
    record.info["voiceline.fresh"] = True  # its first checkout needs no ping


def _ping_with_deadline(dbapi_connection, record, _proxy) -> None:
    """Pessimistic disconnect handling for PostgreSQL, with a deadline.

    SQLAlchemy's pool_pre_ping waits for the answer for ever: a server (or network) that
    accepts bytes and never replies would hold the webhook past Twilio's timeout.
    statement_timeout cannot help, as the server never sees the ping. So the ping is an
    empty query over libpq's non-blocking API, abandoned after PING_TIMEOUT_SECONDS.
    InvalidatePoolError (a DisconnectionError) makes the pool drop every pooled connection
    and reconnect once, which connect_timeout bounds.
    """
    if record.info.pop("voiceline.fresh", False):
        return  # just connected: it has answered already
    from psycopg import pq  # here, not at the top: a SQLite deployment never loads psycopg (9 MB)

    pgconn = dbapi_connection.pgconn
    deadline = time.monotonic() + PING_TIMEOUT_SECONDS
    poller = select.poll()  # one system call per wait: this runs on every checkout

    def wait(events: int) -> None:
        poller.register(pgconn.socket, events)  # (re-registering changes the events)
        if not poller.poll(max(0.0, deadline - time.monotonic()) * 1000):
            raise TimeoutError(f"no answer to the ping in {PING_TIMEOUT_SECONDS} s")

    try:
        pgconn.send_query(b"")
        while pgconn.flush():
            wait(select.POLLOUT)
        pgconn.consume_input()
        while pgconn.is_busy():
            wait(select.POLLIN)
            pgconn.consume_input()
        while (result := pgconn.get_result()) is not None:
            if result.status == pq.ExecStatus.FATAL_ERROR:
                raise ConnectionError(result.error_message.decode("utf-8", "replace"))
    except Exception as error:  # a psycopg error or the deadline: the connection is no good
        dbapi_connection.close()
        raise exc.InvalidatePoolError(f"database ping failed: {error}") from error


def init_database(app: Flask) -> None:
    with app.app_context():
        engine = db.engine
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
            # Both wait for the write lock up to busy_timeout, like any first write.
            event.listen(engine, "savepoint", _sqlite_savepoint)
            event.listen(engine, "before_execute", _sqlite_for_update)
        elif engine.dialect.name == "postgresql":
            event.listen(engine, "connect", _mark_fresh)
            event.listen(engine, "checkout", _ping_with_deadline)
