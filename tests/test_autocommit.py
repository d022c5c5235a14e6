"""voiceline.autocommit: one statement committed on its own, errors as SQLAlchemy gives them."""

import pytest
import sqlalchemy as sa

from voiceline.autocommit import Autocommit
from voiceline.extensions import db
from voiceline.models import Call, now_utc
from voiceline.upsert import insert_ignore


def call_row(sid: str) -> dict:
    return {"call_sid": sid, "caller": "+16175550123", "caller_id_status": "valid", "prompts_version": "v",
            "started_at": now_utc()}


def calls(app) -> list[str]:
    with app.app_context():
        return db.session.scalars(sa.select(Call.call_sid).order_by(Call.call_sid)).all()


def test_a_statement_is_committed_at_once_and_returns_its_row(app):
    with app.app_context():
        writer = Autocommit(db.engine)
        assert insert_ignore(writer, Call, call_row("CA1"), ["call_sid"]) is True
        assert insert_ignore(writer, Call, call_row("CA1"), ["call_sid"]) is False  # RETURNING gave no row
    assert calls(app) == ["CA1"]  # seen from another connection: committed


def test_the_pooled_connection_goes_back_to_transactions(app):
    """Autocommit is undone before the connection returns to the pool: a session's later
    transaction on it still rolls back."""
    with app.app_context():
        insert_ignore(Autocommit(db.engine), Call, call_row("CA1"), ["call_sid"])
        insert_ignore(db.session, Call, call_row("CA2"), ["call_sid"])
        db.session.rollback()
    assert calls(app) == ["CA1"]


def test_an_error_is_sqlalchemys_with_the_values_hidden_and_the_connection_still_good(app):
    with app.app_context():
        writer = Autocommit(db.engine)
        statement = sa.insert(Call).values(call_sid=sa.bindparam("sid"), prompts_version=sa.bindparam("v"),
                                           started_at=sa.bindparam("at", type_=Call.started_at.type))
        with pytest.raises(sa.exc.IntegrityError) as raised:  # caller_id_status may not be NULL
            writer.first(statement, {"sid": "CA9", "v": "v1", "at": now_utc()})
        assert not raised.value.connection_invalidated and raised.value.statement is not None
        assert "parameters hidden" in str(raised.value)
        assert insert_ignore(writer, Call, call_row("CA1"), ["call_sid"]) is True
    assert calls(app) == ["CA1"]


def test_a_connection_whose_autocommit_cannot_be_undone_is_not_pooled(app):
    """A statement that leaves a transaction open (psycopg then refuses to switch autocommit
    off): the connection is dropped, so no later session runs on it committing as it goes."""
    with app.app_context():
        Autocommit(db.engine).first(sa.text("BEGIN"), {})
        insert_ignore(db.session, Call, call_row("CA2"), ["call_sid"])
        db.session.rollback()
        insert_ignore(Autocommit(db.engine), Call, call_row("CA1"), ["call_sid"])
    assert calls(app) == ["CA1"]


def test_a_bind_name_the_driver_needs_escaped_is_passed_as_escaped(app):
    with app.app_context():
        writer = Autocommit(db.engine)
        insert_ignore(writer, Call, call_row("CA1"), ["call_sid"])
        statement = (sa.update(Call).where(Call.call_sid == sa.bindparam("call.sid"))
                     .values(twilio_status="completed").returning(Call.call_sid))
        assert writer.first(statement, {"call.sid": "CA1"}) == ("CA1",)


def test_a_statement_that_needs_python_side_defaults_is_refused(app):
    with app.app_context():
        statement = sa.insert(Call).values(call_sid=sa.bindparam("sid"), caller_id_status="valid",
                                           prompts_version="v")  # started_at's default is Python's
        with pytest.raises(ValueError, match="every value"):
            Autocommit(db.engine).first(statement, {"sid": "CA1"})


def test_an_expanding_in_list_is_refused_when_first_used(app):
    with app.app_context():
        statement = sa.update(Call).where(Call.call_sid.in_(["CA1", "CA2"])).values(twilio_status="completed")
        with pytest.raises(ValueError, match="expanding IN"):
            Autocommit(db.engine).first(statement, {})


def test_a_database_that_cannot_be_reached_is_an_error_with_no_statement(make_app):
    app = make_app(DATABASE_URL="sqlite:////nonexistent-directory/for/sure/voiceline.db")
    with app.app_context():
        with pytest.raises(sa.exc.OperationalError) as raised:
            insert_ignore(Autocommit(db.engine), Call, call_row("CA1"), ["call_sid"])
    assert raised.value.statement is None  # what the circuit breaker reads as an outage


def test_a_write_runs_its_one_statement_and_nothing_else(app):
    """Switching autocommit on and back costs no statement: SQLAlchemy's isolation-level reset
    would run "PRAGMA read_uncommitted" on SQLite after every write."""
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("statements are traced with sqlite3's trace callback; psycopg has none")
        writer = Autocommit(db.engine)
        insert_ignore(writer, Call, call_row("CA1"), ["call_sid"])  # the pool's connection exists now
        traced = []
        pooled = db.engine.raw_connection()
        pooled.driver_connection.set_trace_callback(traced.append)
        pooled.close()
        insert_ignore(writer, Call, call_row("CA2"), ["call_sid"])
        pooled = db.engine.raw_connection()
        pooled.driver_connection.set_trace_callback(None)
        pooled.close()
    assert [sql.split(" (")[0] for sql in traced] == ["INSERT INTO calls"]
    assert calls(app) == ["CA1", "CA2"]


def test_a_statement_returns_its_row_only_when_it_has_rows_to_return(app):
    with app.app_context():
        writer = Autocommit(db.engine)
        insert_ignore(writer, Call, call_row("CA1"), ["call_sid"])
        update = sa.update(Call).where(Call.call_sid == sa.bindparam("sid")).values(language=sa.bindparam("lang"))
        assert writer.first(update, {"sid": "CA1", "lang": "en"}) is None
        assert writer.first(update.returning(Call.language), {"sid": "CA1", "lang": "es"}) == ("es",)
        assert writer.first(sa.select(Call.language).where(Call.call_sid == sa.bindparam("sid")), {"sid": "CA1"}) == ("es",)
        assert writer.first(sa.text("SELECT 7"), {}) == (7,)
