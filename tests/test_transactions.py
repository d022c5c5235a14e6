"""Transactions stay whole on both databases: a webhook's writes are visible together, and the
open request a repeat caller is merged into stays locked until the merge commits."""

import threading

import sqlalchemy as sa

from tests import factories
from voiceline.extensions import db
from voiceline.models import Call, CallbackRequest
from voiceline.models.callbacks import CLOSED
from voiceline.queue import intake


def other_connection(database_url: str) -> sa.Engine:
    """Another client of the same database that gives up on a lock after 0.2 s."""
    if database_url.startswith("sqlite"):
        return sa.create_engine(database_url, connect_args={"timeout": 0.2})
    return sa.create_engine(database_url, connect_args={"options": "-c lock_timeout=200"})


def close_elsewhere(database_url: str, callback_id: int) -> bool:
    """Close the request from another connection; False if a lock kept it from doing so."""
    engine = other_connection(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.update(CallbackRequest).where(CallbackRequest.id == callback_id).values(status=CLOSED))
        return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


def rows_elsewhere(database_url: str) -> tuple[int, int]:
    """(calls, callback requests) as another connection sees them."""
    engine = other_connection(database_url)
    try:
        with engine.connect() as conn:
            return tuple(conn.scalar(sa.select(sa.func.count()).select_from(model)) for model in (Call, CallbackRequest))
    finally:
        engine.dispose()


def test_a_callback_request_is_stored_with_its_webhook_or_not_at_all(app, database_url):
    """The call (when its greeting was lost) and the request are each written inside a savepoint;
    on SQLite a savepoint used to begin, and on release commit, a transaction of its own: rows
    were visible before the webhook committed (a request a coordinator could close before its
    call linked to it), and stayed when it rolled back."""
    with app.app_context():
        request = intake.request_from_call(
            db.session, call_sid="CA" + "5" * 32, caller="+16175550123", language="en", reason="general",
            prompts_version="test", answers={}, recording_sid=None)
        db.session.flush()
        assert request.id is not None
        assert rows_elsewhere(database_url) == (0, 0)
        db.session.rollback()
    assert rows_elsewhere(database_url) == (0, 0)


def test_the_open_request_a_repeat_caller_is_merged_into_stays_locked_until_commit(app, database_url):
    """On SQLite, FOR UPDATE is dropped and the read used to run outside the transaction: a
    coordinator could close the request between the read and the merge, and the caller's
    request went into a closed item. Now the read holds SQLite's write lock (PostgreSQL: the row)."""
    callback_id = factories.callback(app, phone="+16175550123")
    with app.app_context():
        found = intake._open_for_phone(db.session.connection(), "+16175550123")  # the merge's own read
        assert found.id == callback_id
        assert not close_elsewhere(database_url, callback_id)
        db.session.commit()
    assert close_elsewhere(database_url, callback_id)


def _request(call_sid: str, answers: dict) -> intake.Stored | None:
    return intake.request_from_call(
        db.session, call_sid=call_sid, caller="+16175550123", language="en", reason="candidacy",
        prompts_version="test", answers=answers, recording_sid=None)


def racing(app, first, second, who: str):
    """`first()` stores and holds its transaction open while `second()` runs in another thread
    (on PostgreSQL until a query of it waits for a lock); then both commit. Their results."""
    results, errors = [], []

    def other_call():
        try:
            with app.app_context():
                results.append(second())
                db.session.commit()
        except Exception as error:  # reported below, not lost in the thread
            errors.append(error)

    with app.app_context():
        stored = first()
        other = threading.Thread(target=other_call)
        other.start()
        factories.wait_until_a_query_waits_for_a_lock(app, who)
        db.session.commit()
    other.join(timeout=30)
    assert not other.is_alive() and not errors
    [second_result] = results
    return stored, second_result


def test_two_calls_from_one_phone_storing_at_once_make_one_request(app):
    """The same phone finishes callback capture on two calls at once: the second INSERT waits
    for the first transaction (the one-open-request index), inserts nothing, and merges into
    the request the first created. One request, both calls linked, the later answers kept."""
    first, second = "CA" + "1" * 32, "CA" + "2" * 32
    created, merged = racing(
        app, lambda: _request(first, {"age_18_or_older": "yes"}),
        lambda: _request(second, {"callback_phone": "+16175550123", "preferred_window": "evening"}),
        "the second call's INSERT")
    assert merged.id == created.id and merged.preferred_window == "evening"
    [request] = factories.stored_requests(app)
    assert (request.id, request.call_sid, request.answers) == (created.id, second, {"age_18_or_older": "yes"})
    with app.app_context():
        linked = dict(db.session.execute(sa.select(Call.call_sid, Call.callback_id)).all())
    assert linked == {first: created.id, second: created.id}


def test_a_missed_call_racing_the_callers_own_request_is_linked_and_changes_nothing(app):
    """A second call from the same phone is hung up while the first is storing the caller's
    request: the missed call's INSERT waits for that transaction, inserts nothing, and is
    linked to the caller's request, which keeps its language, answers and call."""
    asked, missed = "CA" + "3" * 32, "CA" + "4" * 32
    created, linked = racing(
        app,
        lambda: intake.request_from_call(
            db.session, call_sid=asked, caller="+16175550123", language="es", reason="candidacy",
            prompts_version="test", answers={"age_18_or_older": "yes"}, recording_sid=None),
        lambda: intake.add_or_merge(db.session, intake.Intake(
            phone="+16175550123", language="en", reason="missed_call", call_sid=missed,
            prompts_version="test", requested_by_caller=False, answers={"age_18_or_older": "no"})),
        "the missed call's INSERT")
    assert linked == (created.id, False)
    [request] = factories.stored_requests(app)
    assert (request.language, request.call_sid, request.answers, request.reason, request.missed) == (
        "es", asked, {"age_18_or_older": "yes"}, "candidacy", False)
