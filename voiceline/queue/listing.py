"""Reading the queue: the list coordinators work from, and one request with its history.

Built to stay fast at 100,000 rows: the list is one indexed query for the page (claimer
joined in, no per-row queries) plus one COUNT; the detail page is a handful of queries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload

from voiceline.call_history import steps_of_calls
from voiceline.models import (
    Call,
    CallbackAttempt,
    CallbackNote,
    CallbackRequest,
    Recording,
    SafetyEvent,
    StaffUser,
)
from voiceline.models.callbacks import OPEN
from voiceline.queue.work import Policy, held_by

PER_PAGE = 50


@dataclass(frozen=True)
class Filters:
    status: str = OPEN  # "open", "closed" or "all"
    reason: str | None = None
    language: str | None = None
    mine: bool = False
    phone: str | None = None  # a whole number in E.164, or its last four digits


def queue_query(filters: Filters, staff: StaffUser | None, now: dt.datetime, policy: Policy) -> sa.Select:
    stmt = sa.select(CallbackRequest).options(joinedload(CallbackRequest.claimed_by))
    if filters.status in ("open", "closed"):
        stmt = stmt.where(CallbackRequest.status == filters.status)
    if filters.reason:
        stmt = stmt.where(CallbackRequest.reason == filters.reason)
    if filters.language:
        stmt = stmt.where(CallbackRequest.language == filters.language)
    if filters.mine and staff is not None:
        stmt = stmt.where(held_by(staff.id, now, policy))
    if filters.phone:
        stmt = stmt.where(phone_matches(filters.phone))
    if filters.status == "closed":
        return stmt.order_by(CallbackRequest.closed_at.desc(), CallbackRequest.id.desc())
    return stmt.order_by(CallbackRequest.priority, CallbackRequest.created_at, CallbackRequest.id)


def requests_by_id(session: Session, ids: Sequence[int]) -> list[CallbackRequest]:
    """These requests, in this order (a search's results, shown again); any gone are left out."""
    found = {r.id: r for r in session.scalars(
        sa.select(CallbackRequest).options(joinedload(CallbackRequest.claimed_by))
        .where(CallbackRequest.id.in_(list(ids))))}
    return [found[i] for i in ids if i in found]


@dataclass
class Page:
    items: list[CallbackRequest]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def queue_page(session: Session, filters: Filters, staff: StaffUser | None, now: dt.datetime, policy: Policy,
               page: int = 1, per_page: int = PER_PAGE) -> Page:
    stmt = queue_query(filters, staff, now, policy)
    total = session.scalar(sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery()))
    page = max(1, min(page, Page([], page, per_page, total).pages))
    items = session.scalars(stmt.limit(per_page).offset((page - 1) * per_page)).unique().all()
    return Page(list(items), page, per_page, total)


def calls_of(request: CallbackRequest):
    """SQL: the calls a request's page lists (from its phone, linked to it, or the one that made it)."""
    return sa.or_(Call.caller == request.phone, Call.callback_id == request.id, Call.call_sid == request.call_sid)


def phone_is(phone: str, wanted: str) -> bool:
    """The Python side of phone_matches for one number: E.164 equal, or ending in the digits."""
    return phone == wanted if wanted.startswith("+") else phone.endswith(wanted)


def crisis_callers(session: Session, items: Sequence[CallbackRequest]) -> set[int]:
    """Ids of the requests whose caller pressed the crisis key on some call: from the number
    to call back, or from a number a call linked to the request came from (a caller who keyed
    in another number). Flagged in the queue; two queries per page."""
    if not items:
        return set()
    linked = session.execute(sa.select(Call.callback_id, Call.caller).where(
        Call.callback_id.in_([item.id for item in items]), Call.caller.is_not(None))).all()
    numbers = {item.phone for item in items} | {caller for _, caller in linked}
    pressed = set(session.scalars(sa.select(SafetyEvent.caller).where(SafetyEvent.caller.in_(numbers)).distinct()))
    return ({item.id for item in items if item.phone in pressed}
            | {callback_id for callback_id, caller in linked if caller in pressed})


def phone_matches(phone: str):
    """SQL: requests to be called back at `phone` (E.164, or its last four digits), or made by
    a call from it: the caller who rings back from their own phone after giving another number."""
    def matches(column):
        return column == phone if phone.startswith("+") else column.endswith(phone, autoescape=True)

    from_phone = sa.select(Call.call_sid).where(matches(Call.caller))
    linked = sa.select(Call.callback_id).where(matches(Call.caller), Call.callback_id.is_not(None))
    return sa.or_(matches(CallbackRequest.phone), CallbackRequest.call_sid.in_(from_phone),
                  CallbackRequest.id.in_(linked))


def related_requests(request: CallbackRequest):
    """SQL: requests from the same person as far as the line can tell: the same number to call
    back, a number they called from, or made by a call from this request's number. Listed on
    the page, never merged: a caller who gives another number may be using someone else's phone."""
    caller_ids = sa.select(Call.caller).where(calls_of(request), Call.caller.is_not(None))
    return sa.or_(phone_matches(request.phone), CallbackRequest.phone.in_(caller_ids))


def recording_belongs(session: Session, request: CallbackRequest, recording_sid: str) -> bool:
    """Only messages left on the calls its page lists can be played from a request's page."""
    if recording_sid == request.recording_sid:
        return True
    calls = sa.select(Call.call_sid).where(calls_of(request))
    return session.scalar(sa.select(Recording.id).where(
        Recording.recording_sid == recording_sid,
        sa.or_(Recording.call_sid.in_(calls), Recording.call_sid == request.call_sid))) is not None


@dataclass
class History:
    """Everything staff see about one request."""

    request: CallbackRequest
    claimed_by: StaffUser | None
    attempts: list[CallbackAttempt]
    notes: list[CallbackNote]
    calls: list[Call]
    other_requests: list[CallbackRequest]
    recordings: list[Recording]
    safety_events: list[SafetyEvent]
    path: dict[str, list[str]]  # call_sid -> nodes the caller heard, in order


def history(session: Session, request: CallbackRequest) -> History:
    attempts = session.scalars(
        sa.select(CallbackAttempt).options(joinedload(CallbackAttempt.staff))
        .where(CallbackAttempt.callback_id == request.id).order_by(CallbackAttempt.at)).all()
    notes = session.scalars(
        sa.select(CallbackNote).options(joinedload(CallbackNote.staff))
        .where(CallbackNote.callback_id == request.id).order_by(CallbackNote.at)).all()
    calls = session.scalars(
        sa.select(Call).where(calls_of(request))
        .order_by(Call.started_at.desc()).limit(50)).all()
    call_sids = [c.call_sid for c in calls]
    others = session.scalars(
        sa.select(CallbackRequest).where(related_requests(request), CallbackRequest.id != request.id)
        .order_by(CallbackRequest.created_at.desc()).limit(50)).all() if not request.erased else []
    recordings = session.scalars(
        sa.select(Recording).where(Recording.call_sid.in_(call_sids)).order_by(Recording.created_at.desc())
    ).all() if call_sids else []
    # Crisis-line presses on its calls, and from its phone on calls whose caller ID the
    # retention schedule erased (a press keeps its number while this request is open).
    pressed = [SafetyEvent.call_sid.in_(call_sids)] if call_sids else []
    if not request.erased:  # from its phone, and from the phones its calls came from (as the queue flags)
        callers = {request.phone} | {call.caller for call in calls if call.callback_id == request.id and call.caller}
        pressed.append(SafetyEvent.caller.in_(callers))
    safety = session.scalars(
        sa.select(SafetyEvent).where(sa.or_(*pressed)).order_by(SafetyEvent.at.desc())
    ).all() if pressed else []
    path = {sid: steps.path for sid, steps in steps_of_calls(session, call_sids).items()}
    claimed_by = session.get(StaffUser, request.claimed_by_id) if request.claimed_by_id else None
    return History(request, claimed_by, list(attempts), list(notes), list(calls), list(others),
                   list(recordings), list(safety), path)
