"""Working the callback queue: claim, next, release, attempts, notes, reopen.

Two coordinators must never call the same person at once, so a claim is taken with one
conditional UPDATE (... WHERE claimed_by_id IS NULL OR the claim is stale ...): the database
decides who won, on PostgreSQL and SQLite alike. "Next" picks its candidate with
SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL, so concurrent Next presses fan out over
different rows instead of queueing on the same one. Services flush; callers commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from voiceline import audit
from voiceline.models import CallbackAttempt, CallbackNote, CallbackRequest, StaffUser
from voiceline.models.callbacks import CLOSED, OPEN


@dataclass(frozen=True)
class Outcome:
    key: str  # stored with the attempt and exported: never renamed
    label: str
    closes: bool
    unsuccessful: bool = False  # counts toward MAX_ATTEMPTS (they were not reached)


OUTCOMES: dict[str, Outcome] = {o.key: o for o in (
    Outcome("booked", "Reached – consultation booked", closes=True),
    # They were reached and asked for a later call: the request stays in the queue, and
    # since they were reached it is not a try toward closing it as unreachable.
    Outcome("call_back_later", "Reached – asked us to call back later", closes=False),
    Outcome("not_interested", "Reached – not interested", closes=True),
    Outcome("left_voicemail", "Left voicemail", closes=False, unsuccessful=True),
    Outcome("no_answer", "No answer", closes=False, unsuccessful=True),
    Outcome("wrong_number", "Wrong number", closes=True),
)}
UNREACHABLE = "unreachable"  # closed after MAX_ATTEMPTS unsuccessful attempts
FINAL_OUTCOME_LABELS = {**{k: o.label for k, o in OUTCOMES.items()}, UNREACHABLE: "Unreachable"}
NOTE_LIMIT = 4000


class QueueError(Exception):
    """Something a coordinator should be told in plain words."""


class NotFound(QueueError):
    pass


class ClaimedByOther(QueueError):
    def __init__(self, holder: StaffUser | None):
        self.holder = holder
        who = holder.name if holder is not None else "another coordinator"
        super().__init__(f"{who} is working on this request right now.")


class AlreadyClosed(QueueError):
    def __init__(self):
        super().__init__("This request is already closed.")


class AskedAgain(QueueError):
    """The caller asked the line for a call again after the coordinator's page was opened:
    their newest answers (and perhaps a new best time or message) were not on that page."""

    def __init__(self):
        super().__init__("Not saved yet: the caller phoned the line and asked again for a call after you "
                         "opened this page. Their newest answers are below. If your call still stands, "
                         "save it again.")


class NotClaimed(QueueError):
    def __init__(self):
        super().__init__("Not saved: claim this request before you call, so nobody else calls them at the "
                         "same time. Nobody is working on it now.")


@dataclass(frozen=True)
class Policy:
    """The queue's settings: CLAIM_TIMEOUT_MINUTES, MAX_ATTEMPTS and RETRY_AFTER_MINUTES."""

    claim_timeout: dt.timedelta
    max_attempts: int
    retry_after: dt.timedelta  # Next leaves a request alone this long after an attempt

    @classmethod
    def from_config(cls, config) -> Policy:
        return cls(dt.timedelta(minutes=config["CLAIM_TIMEOUT_MINUTES"]), config["MAX_ATTEMPTS"],
                   dt.timedelta(minutes=config["RETRY_AFTER_MINUTES"]))


def claim_is_live(request: CallbackRequest, now: dt.datetime, policy: Policy) -> bool:
    return (request.claimed_by_id is not None and request.claimed_at is not None
            and request.claimed_at > now - policy.claim_timeout)


def retry_at(request: CallbackRequest, now: dt.datetime, policy: Policy) -> dt.datetime | None:
    """When Next offers this open request again, if its last attempt was too recent; else None."""
    if request.status != OPEN or request.last_attempt_at is None:
        return None
    due = request.last_attempt_at + policy.retry_after
    return due if due > now else None


def _due(now: dt.datetime, policy: Policy):
    """SQL: never tried, or tried at least RETRY_AFTER_MINUTES ago (retry_at is None)."""
    return sa.or_(CallbackRequest.last_attempt_at.is_(None),
                  CallbackRequest.last_attempt_at <= now - policy.retry_after)


def _live_claim(now: dt.datetime, policy: Policy):
    """SQL: someone holds a live claim on the request (claim_is_live, in the database)."""
    return sa.and_(CallbackRequest.claimed_by_id.is_not(None), CallbackRequest.claimed_at > now - policy.claim_timeout)


def held_by(staff_id: int, now: dt.datetime, policy: Policy):
    """SQL: this person holds a live claim on the request."""
    return sa.and_(CallbackRequest.claimed_by_id == staff_id, _live_claim(now, policy))


def _claimable(now: dt.datetime, policy: Policy, staff_id: int | None = None):
    """Open, and unclaimed, or claimed so long ago the claim has lapsed (or mine)."""
    free = sa.or_(CallbackRequest.claimed_by_id.is_(None), CallbackRequest.claimed_at <= now - policy.claim_timeout)
    if staff_id is not None:
        free = sa.or_(free, CallbackRequest.claimed_by_id == staff_id)
    return sa.and_(CallbackRequest.status == OPEN, free)


def _take(session: Session, callback_id: int, staff: StaffUser, now: dt.datetime, where) -> bool:
    """The one conditional UPDATE that takes a claim: True if this person won it."""
    return session.execute(
        sa.update(CallbackRequest)
        .where(CallbackRequest.id == callback_id, where)
        .values(claimed_by_id=staff.id, claimed_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount == 1


def _get(session: Session, callback_id: int, *, lock: bool = False) -> CallbackRequest:
    request = session.get(CallbackRequest, callback_id, populate_existing=True, with_for_update=lock)
    if request is None:
        raise NotFound(f"There is no callback request #{callback_id}.")
    return request


def _not_erased(request: CallbackRequest) -> CallbackRequest:
    """An erased request, or one being erased (voiceline/retention.py), takes nothing new: no
    note, no reopening."""
    if request.being_erased:
        raise QueueError("This request is being erased under the retention schedule: it cannot be changed.")
    if request.erased_at is not None:
        raise QueueError("This request was erased under the retention schedule: it cannot be changed.")
    return request


def _why_not(session: Session, request: CallbackRequest) -> QueueError:
    if request.status != OPEN:
        return AlreadyClosed()
    holder = session.get(StaffUser, request.claimed_by_id) if request.claimed_by_id else None
    return ClaimedByOther(holder)


def claim(session: Session, callback_id: int, staff: StaffUser, now: dt.datetime, policy: Policy,
          *, actor: str | None = None, address: str | None = None) -> CallbackRequest:
    """Claim (or renew my claim on) one request; raise ClaimedByOther if someone has it.

    Renewing a live claim of mine is not a new claim and is not audited again: opening an
    item I hold, or logging an attempt on it, keeps it mine without filling the audit log.
    """
    if _take(session, callback_id, staff, now, sa.and_(CallbackRequest.status == OPEN, held_by(staff.id, now, policy))):
        return _get(session, callback_id)  # renewed
    if not _take(session, callback_id, staff, now, _claimable(now, policy, staff.id)):
        raise _why_not(session, _get(session, callback_id))
    audit.record(session, "claim", staff=staff, actor=actor, callback_id=callback_id, address=address)
    return _get(session, callback_id)


def claim_next(session: Session, staff: StaffUser, now: dt.datetime, policy: Policy,
               *, actor: str | None = None, address: str | None = None) -> CallbackRequest | None:
    """Claim the highest-priority, oldest claimable request for `staff` that is not waiting out
    RETRY_AFTER_MINUTES since its last attempt; None if there is none. (Claimed by hand, from
    its page, a request can be called again at any time.)"""
    postgres = session.get_bind().dialect.name == "postgresql"
    for _ in range(20):  # each miss means someone else won that row; try the next one
        candidate = (
            sa.select(CallbackRequest.id)
            .where(_claimable(now, policy), _due(now, policy))
            .order_by(CallbackRequest.priority, CallbackRequest.created_at, CallbackRequest.id)
            .limit(1)
        )
        if postgres:
            candidate = candidate.with_for_update(skip_locked=True)
        callback_id = session.scalar(candidate)
        if callback_id is None:
            return None
        if _take(session, callback_id, staff, now, _claimable(now, policy)):
            audit.record(session, "claim", staff=staff, actor=actor, callback_id=callback_id,
                         detail={"via": "next"}, address=address)
            return _get(session, callback_id)
    return None


def held_request(session: Session, staff: StaffUser, now: dt.datetime, policy: Policy) -> CallbackRequest | None:
    """The open request this person is working on (a live claim; the earliest if several)."""
    return session.scalars(
        sa.select(CallbackRequest).where(CallbackRequest.status == OPEN, held_by(staff.id, now, policy))
        .order_by(CallbackRequest.claimed_at, CallbackRequest.id).limit(1)
    ).first()


@dataclass(frozen=True)
class NextRequest:
    """What Next opens: a request newly claimed, or the one already held (`still_mine`)."""

    request: CallbackRequest | None
    still_mine: bool = False


def next_for(session: Session, staff: StaffUser, now: dt.datetime, policy: Policy,
             *, actor: str | None = None, address: str | None = None) -> NextRequest:
    """Next: the open request this person already holds (one caller at a time), else the
    next one claimed for them; a request of None when nothing can be claimed.

    Their own account row is locked first (SQLite: the write lock), so two Next presses at
    once, a double click, cannot each claim a request."""
    session.execute(sa.select(StaffUser.id).where(StaffUser.id == staff.id).with_for_update())
    held = held_request(session, staff, now, policy)
    if held is not None:
        return NextRequest(held, still_mine=True)
    return NextRequest(claim_next(session, staff, now, policy, actor=actor, address=address))


@dataclass(frozen=True)
class OpenCounts:
    """Why Next found nothing: how many requests are open, how many of them are held, and how
    many of the rest wait out RETRY_AFTER_MINUTES (the first of those until `next_retry_at`)."""

    open: int
    being_worked_on: int
    waiting_to_retry: int = 0
    next_retry_at: dt.datetime | None = None


def _requests(count: int) -> str:
    return f"{count} open request{'' if count == 1 else 's'}"


def nothing_to_claim(counts: OpenCounts, policy: Policy, time_words: Callable[[dt.datetime], str]) -> str:
    """Next found nothing: say whether the queue is empty, everything in it is taken, or some
    of it waits out RETRY_AFTER_MINUTES (and until when, in `time_words`). For the staff site
    and `voiceline callbacks next` alike."""
    if counts.open == 0:
        return "There is nothing waiting in the queue right now."
    if counts.waiting_to_retry == 0:
        if counts.open == 1:
            return "The one open request is being worked on by a colleague right now."
        return f"All {counts.open} open requests are being worked on right now."
    minutes = policy.retry_after.total_seconds() // 60
    parts = [f"{counts.being_worked_on} being worked on"] if counts.being_worked_on else []
    parts.append(f"{counts.waiting_to_retry} tried in the last {minutes:.0f} minutes")
    return (f"Nothing to call yet. Of the {_requests(counts.open)}: {' and '.join(parts)}. Next offers "
            f"one again after {time_words(counts.next_retry_at)}; you can still open one and claim it.")


def open_counts(session: Session, now: dt.datetime, policy: Policy) -> OpenCounts:
    live = _live_claim(now, policy)
    waiting = sa.and_(sa.not_(live), sa.not_(_due(now, policy)))
    total, held, waiting_count, first_tried = session.execute(
        sa.select(sa.func.count(), sa.func.count(sa.case((live, 1))), sa.func.count(sa.case((waiting, 1))),
                  sa.func.min(sa.case((waiting, CallbackRequest.last_attempt_at))))
        .where(CallbackRequest.status == OPEN)
    ).one()
    next_retry = first_tried + policy.retry_after if first_tried is not None else None
    return OpenCounts(total, held, waiting_count, next_retry)


def release(session: Session, callback_id: int, staff: StaffUser, now: dt.datetime, policy: Policy,
            *, actor: str | None = None, address: str | None = None) -> CallbackRequest:
    """Give a request back to the queue. Admins may release anyone's claim."""
    condition = [CallbackRequest.id == callback_id, CallbackRequest.claimed_by_id.is_not(None)]
    if not staff.is_admin:
        condition.append(CallbackRequest.claimed_by_id == staff.id)
    released = session.execute(
        sa.update(CallbackRequest).where(*condition).values(claimed_by_id=None, claimed_at=None)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    request = _get(session, callback_id)
    if released:
        audit.record(session, "release", staff=staff, actor=actor, callback_id=callback_id, address=address)
    elif request.claimed_by_id is not None and claim_is_live(request, now, policy):
        raise _why_not(session, request)
    return request


def keep_claim(session: Session, request: CallbackRequest, staff: StaffUser, now: dt.datetime, policy: Policy,
               *, address: str | None = None) -> None:
    """Looking at an open item I hold keeps my claim alive; if it lapsed and someone else
    took it meanwhile, nothing changes (the page then says who has it)."""
    if request.status != OPEN or request.claimed_by_id != staff.id:
        return
    try:
        claim(session, request.id, staff, now, policy, address=address)
    except QueueError:
        pass  # a claim that is not won writes nothing


def release_all(session: Session, staff: StaffUser) -> None:
    """Every claim this person holds goes back to the queue (their account was disabled)."""
    session.execute(sa.update(CallbackRequest).where(CallbackRequest.claimed_by_id == staff.id)
                    .values(claimed_by_id=None, claimed_at=None).execution_options(synchronize_session=False))


def _hold_for_attempt(session: Session, callback_id: int, staff: StaffUser, now: dt.datetime,
                      expected_attempts: int | None, expected_call: str | None) -> CallbackRequest:
    """The request, if this person holds it: a live claim, or one of theirs that lapsed while
    nobody else took it (renewed here). Anyone else was never shown the number, so their save
    is refused, saying why.

    The conditional UPDATE holds the row (PostgreSQL) or the write lock (SQLite) until commit."""
    mine = sa.and_(CallbackRequest.status == OPEN, CallbackRequest.claimed_by_id == staff.id)
    taken = _take(session, callback_id, staff, now, mine)
    request = _get(session, callback_id)
    if expected_attempts is not None and request.attempts != expected_attempts:
        raise QueueError("Not saved: a call on this request was saved after this page was opened (a second "
                         "click, or a colleague). Its history below shows it; save again only for a new call.")
    if expected_call is not None and (request.call_sid or "") != expected_call:
        raise AskedAgain()  # a merge waited for by the UPDATE above is seen here (a fresh read)
    if taken:
        return request
    if request.status == OPEN and request.claimed_by_id is None:
        raise NotClaimed()
    raise _why_not(session, request)


def log_attempt(session: Session, callback_id: int, staff: StaffUser, outcome: str, note: str | None,
                now: dt.datetime, policy: Policy, *, actor: str | None = None,
                address: str | None = None, expected_attempts: int | None = None,
                expected_call: str | None = None) -> CallbackRequest:
    """Record a call attempt. Booked, not interested or wrong number close the request; no
    answer and voicemail send it back to the queue until MAX_ATTEMPTS of them close it as
    unreachable; a caller reached who asked for a later call sends it back uncounted. The coordinator must hold the claim (see _hold_for_attempt).

    `expected_attempts`, the count the coordinator's page showed, refuses a second save of
    the same page: the first one released the claim, so the claim alone cannot tell.
    `expected_call`, the request's latest call as the page showed it, refuses a save made from
    a page opened before the caller asked again: a "not interested" or a last voicemail would
    otherwise close the request they had just renewed, unread."""
    if outcome not in OUTCOMES:
        raise QueueError(f"Unknown outcome {outcome!r}.")
    request = _hold_for_attempt(session, callback_id, staff, now, expected_attempts, expected_call)
    note = (note or "").strip()[:NOTE_LIMIT] or None
    session.add(CallbackAttempt(callback_id=callback_id, staff_id=staff.id, at=now, outcome=outcome, note=note))
    request.attempts += 1
    request.last_attempt_at = now
    result = OUTCOMES[outcome]
    if result.closes:
        _close(request, outcome, staff, now)
    elif result.unsuccessful:
        request.unsuccessful_attempts += 1
        if request.unsuccessful_attempts >= policy.max_attempts:
            _close(request, UNREACHABLE, staff, now)
    request.claimed_by_id = None
    request.claimed_at = None
    audit.record(session, "attempt", staff=staff, actor=actor, callback_id=callback_id,
                 detail={"outcome": outcome, "closed_as": request.outcome}, address=address)
    session.flush()
    return request


def _close(request: CallbackRequest, outcome: str, staff: StaffUser, now: dt.datetime) -> None:
    request.status = CLOSED
    request.outcome = outcome
    request.closed_at = now
    request.closed_by_id = staff.id


def add_note(session: Session, callback_id: int, staff: StaffUser, text: str, now: dt.datetime,
             *, address: str | None = None) -> CallbackNote:
    text = (text or "").strip()[:NOTE_LIMIT]
    if not text:
        raise QueueError("A note cannot be empty.")
    _not_erased(_get(session, callback_id, lock=True))
    note = CallbackNote(callback_id=callback_id, staff_id=staff.id, at=now, text=text)
    session.add(note)
    audit.record(session, "note", staff=staff, callback_id=callback_id, address=address)
    session.flush()
    return note


def reopen(session: Session, callback_id: int, admin: StaffUser, now: dt.datetime,
           *, address: str | None = None) -> CallbackRequest:
    """Admins only: put a closed request back in the queue, with a fresh attempt count (and
    no wait for RETRY_AFTER_MINUTES: Next offers it at once)."""
    if not admin.is_admin:
        raise QueueError("Only an admin can reopen a request.")
    request = _not_erased(_get(session, callback_id, lock=True))  # the lock: not while it is being erased
    if request.status == OPEN:
        raise QueueError("This request is already open.")
    previous = request.outcome
    try:
        with session.begin_nested():
            request.status = OPEN
            request.outcome = None
            request.closed_at = None
            request.closed_by_id = None
            request.unsuccessful_attempts = 0
            request.last_attempt_at = None
            request.claimed_by_id = None
            request.claimed_at = None
            session.flush()
    except IntegrityError:
        session.refresh(request)
        other = session.scalar(sa.select(CallbackRequest.id).where(
            CallbackRequest.phone == request.phone, CallbackRequest.status == OPEN))
        raise QueueError(f"This phone already has an open request (#{other}); work that one instead.") from None
    audit.record(session, "reopen", staff=admin, callback_id=callback_id, detail={"was": previous}, address=address)
    return request
