"""Working the queue: claims are atomic, Next never hands one item to two people, attempts
close items by the rules, and every action is audited."""

import datetime as dt
import threading
import uuid

import pytest
import sqlalchemy as sa

from tests import factories
from voiceline.extensions import db
from voiceline.models import AuditEntry, CallbackAttempt, CallbackRequest, StaffUser, now_utc
from voiceline.queue import work


@pytest.fixture
def people(app):
    return (factories.staff(app, "ana@clinic.example", name="Ana"),
            factories.staff(app, "ben@clinic.example", name="Ben"),
            factories.staff(app, "admin@clinic.example", name="Ada Admin", role="admin"))


def policy(app):
    return work.Policy.from_config(app.config)


def get(app, callback_id):
    with app.app_context():
        return db.session.get(CallbackRequest, callback_id)


def run(app, fn, *args, **kwargs):
    """Call a service in its own app context (its own session), committing like a view does."""
    with app.app_context():
        args = [db.session.get(StaffUser, a.id) if isinstance(a, StaffUser) else a for a in args]
        try:
            result = fn(db.session, *args, **kwargs)
            db.session.commit()
            return result.id if hasattr(result, "id") else result
        except Exception:
            db.session.rollback()
            raise


def attempt(app, item, who, outcome, note=None, now=None):
    """A coordinator's call as the pages make it: claim the request, then save how it went."""
    now = now or now_utc()
    run(app, work.claim, item, who, now, policy(app))
    return run(app, work.log_attempt, item, who, outcome, note, now, policy(app))


def audit_actions(app, callback_id=None):
    with app.app_context():
        stmt = sa.select(AuditEntry.action).order_by(AuditEntry.id)
        if callback_id is not None:
            stmt = stmt.where(AuditEntry.callback_id == callback_id)
        return db.session.scalars(stmt).all()


def test_claim_then_another_coordinator_is_told_who_has_it(app, people):
    ana, ben, _ = people
    item = factories.callback(app)
    run(app, work.claim, item, ana, now_utc(), policy(app))
    with pytest.raises(work.ClaimedByOther, match="Ana is working on this request right now."):
        run(app, work.claim, item, ben, now_utc(), policy(app))
    assert get(app, item).claimed_by_id == ana.id
    assert audit_actions(app, item) == ["claim"]


def test_claiming_again_renews_my_own_claim(app, people):
    ana, _, _ = people
    item = factories.callback(app)
    earlier = now_utc() - dt.timedelta(minutes=20)
    run(app, work.claim, item, ana, earlier, policy(app))
    run(app, work.claim, item, ana, now_utc(), policy(app))
    assert get(app, item).claimed_at > earlier + dt.timedelta(minutes=19)


def test_an_idle_claim_returns_to_the_queue(app, people):
    ana, ben, _ = people
    item = factories.callback(app)
    run(app, work.claim, item, ana, now_utc() - dt.timedelta(minutes=31), policy(app))
    assert run(app, work.claim_next, ben, now_utc(), policy(app)) == item
    assert get(app, item).claimed_by_id == ben.id


def test_claim_timeout_is_a_setting(make_app):
    app = make_app(CLAIM_TIMEOUT_MINUTES="5")
    ana = factories.staff(app, "ana@clinic.example", name="Ana")
    ben = factories.staff(app, "ben@clinic.example", name="Ben")
    item = factories.callback(app)
    run(app, work.claim, item, ana, now_utc() - dt.timedelta(minutes=6), policy(app))
    run(app, work.claim, item, ben, now_utc(), policy(app))
    assert get(app, item).claimed_by_id == ben.id


def test_next_takes_priority_then_age(app, people):
    ana, _, _ = people
    missed_old = factories.callback(app, priority=20, age=dt.timedelta(days=3))
    requested_new = factories.callback(app, priority=10, age=dt.timedelta(hours=1))
    requested_old = factories.callback(app, priority=10, age=dt.timedelta(hours=5))
    factories.callback(app, status="closed", priority=1, age=dt.timedelta(days=9))
    order = [run(app, work.claim_next, ana, now_utc(), policy(app)) for _ in range(4)]
    assert order == [requested_old, requested_new, missed_old, None]


def test_next_skips_items_claimed_by_others(app, people):
    ana, ben, _ = people
    first = factories.callback(app, age=dt.timedelta(hours=9))
    second = factories.callback(app, age=dt.timedelta(hours=1))
    run(app, work.claim, first, ana, now_utc(), policy(app))
    assert run(app, work.claim_next, ben, now_utc(), policy(app)) == second
    assert audit_actions(app, second) == ["claim"]


def test_next_for_opens_what_i_hold_before_claiming_more(app, people):
    ana, ben, _ = people
    first = factories.callback(app, age=dt.timedelta(hours=9))
    second = factories.callback(app, age=dt.timedelta(hours=1))

    def next_for(who, now=None):
        with app.app_context():
            found = work.next_for(db.session, db.session.get(StaffUser, who.id), now or now_utc(), policy(app))
            db.session.commit()
            return (found.request.id if found.request else None), found.still_mine

    assert next_for(ana) == (first, False)
    assert next_for(ana) == (first, True)
    assert next_for(ben) == (second, False)
    assert next_for(ben) == (second, True)
    assert audit_actions(app) == ["claim", "claim"]
    # A lapsed claim is not held: Next claims afresh (here the same request, first in line).
    assert next_for(ana, now_utc() + dt.timedelta(minutes=31)) == (first, False)
    with app.app_context():
        assert work.open_counts(db.session, now_utc(), policy(app)) == work.OpenCounts(open=2, being_worked_on=2)


def test_next_leaves_a_request_alone_for_retry_after_minutes_after_an_attempt(app, people):
    """No answer, a voicemail, or "call back later": Next offers the request again only
    RETRY_AFTER_MINUTES (60) later, in its place in line; by hand it can still be claimed."""
    ana, ben, _ = people
    start = now_utc()
    tried = [factories.callback(app, age=dt.timedelta(hours=9 - i)) for i in range(3)]
    untried = factories.callback(app, age=dt.timedelta(hours=1))
    for item, outcome in zip(tried, ("no_answer", "left_voicemail", "call_back_later")):
        attempt(app, item, ana, outcome, now=start)
        assert get(app, item).last_attempt_at == start
    assert run(app, work.claim_next, ben, start + dt.timedelta(minutes=59), policy(app)) == untried
    assert run(app, work.claim_next, ben, start + dt.timedelta(minutes=59), policy(app)) is None
    with app.app_context():
        counts = work.open_counts(db.session, start + dt.timedelta(minutes=59), policy(app))
        request = db.session.get(CallbackRequest, tried[0])
        assert work.retry_at(request, start + dt.timedelta(minutes=59), policy(app)) == start + dt.timedelta(hours=1)
        assert work.retry_at(request, start + dt.timedelta(minutes=60), policy(app)) is None
    assert counts == work.OpenCounts(open=4, being_worked_on=1, waiting_to_retry=3,
                                     next_retry_at=start + dt.timedelta(hours=1))
    run(app, work.claim, tried[1], ana, start + dt.timedelta(minutes=1), policy(app))  # by hand: allowed
    assert get(app, tried[1]).claimed_by_id == ana.id
    assert run(app, work.claim_next, ben, start + dt.timedelta(minutes=60), policy(app)) == tried[0]


def test_no_retry_delay_when_retry_after_minutes_is_0(make_app):
    app = make_app(RETRY_AFTER_MINUTES="0")
    ana = factories.staff(app)
    item = factories.callback(app)
    attempt(app, item, ana, "no_answer")
    assert run(app, work.claim_next, ana, now_utc(), policy(app)) == item


def test_release_gives_the_item_back(app, people):
    ana, ben, admin = people
    item = factories.callback(app)
    run(app, work.claim, item, ana, now_utc(), policy(app))
    with pytest.raises(work.ClaimedByOther):
        run(app, work.release, item, ben, now_utc(), policy(app))
    run(app, work.release, item, admin, now_utc(), policy(app))  # admins may release anyone's claim
    assert get(app, item).claimed_by_id is None
    assert audit_actions(app, item) == ["claim", "release"]


@pytest.mark.parametrize("outcome", ["booked", "not_interested", "wrong_number"])
def test_reached_or_wrong_number_closes_the_item(app, people, outcome):
    ana, _, _ = people
    item = factories.callback(app)
    attempt(app, item, ana, outcome, "spoke with them")
    request = get(app, item)
    assert (request.status, request.outcome, request.attempts, request.closed_by_id) == ("closed", outcome, 1, ana.id)
    assert request.closed_at is not None and request.claimed_by_id is None


def test_unsuccessful_attempts_close_as_unreachable_after_max_attempts(app, people):
    ana, ben, admin = people
    item = factories.callback(app)
    attempt(app, item, ana, "no_answer")
    request = get(app, item)
    assert (request.status, request.attempts, request.claimed_by_id) == ("open", 1, None)  # back in the queue
    attempt(app, item, ben, "left_voicemail", "left a message without the clinic name")
    attempt(app, item, ana, "no_answer")
    request = get(app, item)
    assert (request.status, request.outcome, request.attempts) == ("closed", "unreachable", 3)
    with pytest.raises(work.AlreadyClosed):
        run(app, work.log_attempt, item, ana, "no_answer", None, now_utc(), policy(app))
    run(app, work.reopen, item, admin, now_utc())
    request = get(app, item)
    assert (request.status, request.outcome, request.unsuccessful_attempts, request.attempts) == ("open", None, 0, 3)
    assert request.last_attempt_at is None  # reopened: Next offers it at once
    assert run(app, work.claim_next, ben, now_utc(), policy(app)) == item
    with app.app_context():
        notes = db.session.scalars(sa.select(CallbackAttempt.note).order_by(CallbackAttempt.id)).all()
    assert notes == [None, "left a message without the clinic name", None]
    assert audit_actions(app, item)[-2:] == ["reopen", "claim"]


def test_call_back_later_keeps_the_item_open_and_uncounted(make_app):
    app = make_app(MAX_ATTEMPTS="1")
    ana = factories.staff(app)
    item = factories.callback(app)
    attempt(app, item, ana, "call_back_later", "after work")
    request = get(app, item)
    assert (request.status, request.outcome, request.attempts, request.unsuccessful_attempts,
            request.claimed_by_id) == ("open", None, 1, 0, None)
    attempt(app, item, ana, "no_answer")  # the one try MAX_ATTEMPTS allows
    assert (get(app, item).status, get(app, item).outcome) == ("closed", "unreachable")


def test_max_attempts_is_a_setting(make_app):
    app = make_app(MAX_ATTEMPTS="1")
    ana = factories.staff(app)
    item = factories.callback(app)
    attempt(app, item, ana, "no_answer")
    assert get(app, item).outcome == "unreachable"


def test_attempt_on_an_item_someone_else_holds_is_refused(app, people):
    ana, ben, _ = people
    item = factories.callback(app)
    run(app, work.claim, item, ana, now_utc(), policy(app))
    with pytest.raises(work.ClaimedByOther):
        run(app, work.log_attempt, item, ben, "booked", None, now_utc(), policy(app))
    assert get(app, item).attempts == 0


def test_an_attempt_needs_the_claim(app, people):
    """Whoever has not claimed the request was never shown its number: their save is refused."""
    ana, _, _ = people
    item = factories.callback(app)
    with pytest.raises(work.NotClaimed, match="claim this request before you call"):
        run(app, work.log_attempt, item, ana, "booked", None, now_utc(), policy(app))
    request = get(app, item)
    assert (request.status, request.attempts, request.claimed_by_id) == ("open", 0, None)
    with app.app_context():
        assert db.session.scalars(sa.select(CallbackAttempt)).all() == []
    assert audit_actions(app, item) == []


def test_my_lapsed_claim_still_saves_while_nobody_else_took_it(app, people):
    ana, ben, _ = people
    item = factories.callback(app)
    run(app, work.claim, item, ana, now_utc() - dt.timedelta(minutes=45), policy(app))  # a long call
    run(app, work.log_attempt, item, ana, "booked", None, now_utc(), policy(app))
    assert (get(app, item).status, get(app, item).closed_by_id) == ("closed", ana.id)
    # Once someone else has taken it, the lapsed claim is not enough.
    other = factories.callback(app)
    run(app, work.claim, other, ana, now_utc() - dt.timedelta(minutes=45), policy(app))
    run(app, work.claim, other, ben, now_utc(), policy(app))
    with pytest.raises(work.ClaimedByOther, match="Ben is working on this request"):
        run(app, work.log_attempt, other, ana, "booked", None, now_utc(), policy(app))
    assert get(app, other).attempts == 0


def test_only_admins_reopen_and_never_beside_another_open_request(app, people):
    ana, _, admin = people
    closed = factories.callback(app, phone="+16175550999", status="closed")
    with pytest.raises(work.QueueError, match="Only an admin"):
        run(app, work.reopen, closed, ana, now_utc())
    newer = factories.callback(app, phone="+16175550999")
    with pytest.raises(work.QueueError, match=f"already has an open request \\(#{newer}\\)"):
        run(app, work.reopen, closed, admin, now_utc())
    assert get(app, closed).status == "closed"


def test_notes_are_kept_and_audited(app, people):
    ana, _, _ = people
    item = factories.callback(app)
    run(app, work.add_note, item, ana, "  prefers a call after 5  ", now_utc())
    with pytest.raises(work.QueueError):
        run(app, work.add_note, item, ana, "   ", now_utc())
    assert audit_actions(app, item) == ["note"]


def test_unknown_item_or_outcome(app, people):
    ana, _, _ = people
    with pytest.raises(work.NotFound):
        run(app, work.claim, 999999, ana, now_utc(), policy(app))
    item = factories.callback(app)
    run(app, work.claim, item, ana, now_utc(), policy(app))
    with pytest.raises(work.QueueError, match="Unknown outcome"):
        run(app, work.log_attempt, item, ana, "maybe", None, now_utc(), policy(app))


def test_audit_log_is_append_only(app, people):
    item = factories.callback(app)
    run(app, work.claim, item, people[0], now_utc(), policy(app))
    before = audit_actions(app)
    with app.app_context():
        for statement in (sa.update(AuditEntry).values(action="release"), sa.delete(AuditEntry)):
            with pytest.raises(sa.exc.DBAPIError, match="append-only"):
                db.session.execute(statement)
            db.session.rollback()
    assert audit_actions(app) == before and before[-1] == "claim"


# ---- concurrency: real threads, each with its own session and connection -------------------------------
def _in_threads(app, count, target):
    barrier = threading.Barrier(count)
    results, errors = [None] * count, []

    def worker(index):
        try:
            with app.app_context():
                barrier.wait(timeout=30)
                results[index] = target(index)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a coordinator's thread never finished"
    assert not errors, errors
    return results


def test_many_coordinators_claiming_one_item_at_once_exactly_one_wins(app):
    team = [factories.staff(app, f"c{i}@clinic.example", name=f"Coordinator {i}") for i in range(8)]
    item = factories.callback(app)

    def attempt(index):
        me = db.session.get(StaffUser, team[index].id)
        try:
            work.claim(db.session, item, me, now_utc(), policy(app))
            db.session.commit()
            return "won"
        except work.ClaimedByOther as exc:
            db.session.rollback()
            return f"lost to {exc.holder.name}"

    results = _in_threads(app, len(team), attempt)
    assert results.count("won") == 1
    winner = team[results.index("won")]
    assert all(r == "won" or r == f"lost to {winner.name}" for r in results)
    assert get(app, item).claimed_by_id == winner.id
    assert audit_actions(app, item) == ["claim"]


def test_next_under_contention_never_hands_one_item_to_two_people(app):
    team = [factories.staff(app, f"n{i}@clinic.example", name=f"N {i}") for i in range(6)]
    items = {factories.callback(app, age=dt.timedelta(minutes=i)) for i in range(30)}

    def drain(index):
        me = db.session.get(StaffUser, team[index].id)
        mine = []
        while True:
            request = work.claim_next(db.session, me, now_utc(), policy(app))
            db.session.commit()
            if request is None:
                return mine
            mine.append(request.id)

    results = _in_threads(app, len(team), drain)
    handed_out = [callback_id for mine in results for callback_id in mine]
    assert sorted(handed_out) == sorted(items)  # every item once, none twice
    with app.app_context():
        claims = dict(db.session.execute(sa.select(CallbackRequest.id, CallbackRequest.claimed_by_id)).all())
    for index, mine in enumerate(results):
        assert all(claims[c] == team[index].id for c in mine)


def test_renewing_my_claim_is_not_audited_as_a_new_claim(app, people):
    ana, _, _ = people
    item = factories.callback(app)
    run(app, work.claim, item, ana, now_utc(), policy(app))
    attempt(app, item, ana, "no_answer")  # its claim renews the one I hold
    assert audit_actions(app, item) == ["claim", "attempt"]
    # A lapsed claim taken again is a new claim.
    run(app, work.claim, item, ana, now_utc() - dt.timedelta(hours=1), policy(app))
    run(app, work.claim, item, ana, now_utc(), policy(app))
    assert audit_actions(app, item) == ["claim", "attempt", "claim", "claim"]


# ---- A caller who asks again while a coordinator is calling them ---------------------------------------
def _asked_again(app, phone, window="evening"):
    """The caller's own new request for `phone`, merged into its open one, as intake stores it."""
    from voiceline.queue import intake

    sid = "CA" + uuid.uuid4().hex
    run(app, intake.add_or_merge, intake.Intake(
        phone=phone, language="en", reason="candidacy", call_sid=sid, prompts_version="test",
        requested_by_caller=True, preferred_window=window))
    return sid


def test_a_request_renewed_by_the_caller_counts_tries_afresh(app, people):
    """Two voicemails, then the caller asks again: the next voicemail is the first try on the
    renewed request, not the last (MAX_ATTEMPTS 3), and Next may offer it at once."""
    ana, _, _ = people
    item = factories.callback(app)
    for _ in range(policy(app).max_attempts - 1):
        attempt(app, item, ana, "left_voicemail")
    _asked_again(app, get(app, item).phone)
    renewed = get(app, item)
    assert (renewed.unsuccessful_attempts, renewed.last_attempt_at) == (0, None)
    attempt(app, item, ana, "left_voicemail")
    after = get(app, item)
    assert (after.status, after.unsuccessful_attempts, after.attempts) == ("open", 1, 3)


@pytest.mark.parametrize("outcome", ["left_voicemail", "not_interested"])
def test_a_save_from_a_page_opened_before_the_caller_asked_again_is_refused(app, people, outcome):
    ana, _, _ = people
    item = factories.callback(app)
    for _ in range(policy(app).max_attempts - 1):
        attempt(app, item, ana, "left_voicemail")
    run(app, work.claim, item, ana, now_utc(), policy(app))
    page = get(app, item)  # what the coordinator's page showed
    new_call = _asked_again(app, page.phone)
    with pytest.raises(work.AskedAgain, match="asked again for a call after you opened this page"):
        run(app, work.log_attempt, item, ana, outcome, None, now_utc(), policy(app),
            expected_attempts=page.attempts, expected_call=page.call_sid)
    after = get(app, item)
    assert (after.status, after.attempts, after.call_sid, after.claimed_by_id) == ("open", 2, new_call, ana.id)
    # Saved again from the page as it is now: it answers to the newest request.
    run(app, work.log_attempt, item, ana, outcome, None, now_utc(), policy(app),
        expected_attempts=after.attempts, expected_call=new_call)
    assert get(app, item).attempts == 3


def test_a_save_waiting_on_the_callers_merge_then_sees_it(app, people):
    """The caller's merge holds the request's row; the coordinator's save waits for
    it, then reads the renewed request and is refused instead of closing it (the race is
    PostgreSQL's run; on SQLite the write lock puts them in the same order)."""
    from voiceline.queue import intake

    ana, _, _ = people
    item = factories.callback(app)
    for _ in range(policy(app).max_attempts - 1):
        attempt(app, item, ana, "left_voicemail")
    run(app, work.claim, item, ana, now_utc(), policy(app))
    page = get(app, item)
    errors = []

    def save():
        try:
            run(app, work.log_attempt, item, ana, "left_voicemail", None, now_utc(), policy(app),
                expected_attempts=page.attempts, expected_call=page.call_sid)
        except Exception as error:  # noqa: BLE001 - the test reads it below
            errors.append(error)

    with app.app_context():
        intake.add_or_merge(db.session, intake.Intake(
            phone=page.phone, language="en", reason="candidacy", call_sid="CA" + uuid.uuid4().hex,
            prompts_version="test", requested_by_caller=True, preferred_window="evening"))
        saving = threading.Thread(target=save)
        saving.start()
        factories.wait_until_a_query_waits_for_a_lock(app, "the coordinator's save")
        db.session.commit()  # the caller hears the read-back
    saving.join(30)
    assert [type(e) for e in errors] == [work.AskedAgain]
    after = get(app, item)
    assert (after.status, after.preferred_window, after.attempts) == ("open", "evening", 2)
