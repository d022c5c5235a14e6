"""Soak: 2,000 simulated calls at once through the real call flow while coordinators work the
queue, then everything reconciled against the database. Both backends.

Each call is a `SimulatedCall` (signed webhooks in process, its own test client) on a pool of
threads; coordinators are other threads taking `claim_next` and logging attempts (sometimes
releasing) in their own app contexts. The mix: callback requests in both languages, with and
without a voice message, from caller IDs and from withheld numbers keying one in; transfers
that are busy and become callback requests; transfers accepted; missed calls (hung up after
the main menu, or deeper); crisis presses; silence and wrong keys. Then:

- every webhook answered 200 with TwiML that keeps the caller going;
- every callback a caller heard confirmed is in the database exactly once, linked from its
  call, under the phone read back, and never merged into a request already closed;
- one open request per phone, and no request without the call that made it;
- missed-call items are exactly the calls that hung up after the main menu with a number to
  call back;
- no two coordinators ever held or attempted one item at the same time (audit log order).

The soak found two places where SQLite did not keep a transaction together (a SAVEPOINT that
began and committed a transaction of its own; SELECT ... FOR UPDATE reads outside the
transaction); the first two tests pin the fix in voiceline/database.py, on both backends.

On PostgreSQL no webhook may fail at all. On SQLite, SQLite's single write lock with this
many writers in one process sometimes waits past busy_timeout (5 s): the caller gets the
fallback TwiML. Those failures, and only those, are tolerated there: counted, printed, and
the calls they touched are held to the rules above but not to their script.
"""

from __future__ import annotations

import collections
import logging
import os
import random
import re
import threading
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from tests import factories
from tests.phone import SATURDAY_EVENING, check_invariants
from voiceline.extensions import db
from voiceline.models import (
    AuditEntry,
    Call,
    CallbackAttempt,
    CallbackRequest,
    Recording,
    SafetyEvent,
    now_utc,
)
from voiceline.models.callbacks import CLOSED, OPEN
from voiceline.queue import work
from voiceline.simulate import ScriptedCaller, SimulatedCall

pytestmark = pytest.mark.slow

CALLS = int(os.environ.get("SOAK_CALLS", "2000"))  # a smaller number for a quick local look
CALL_THREADS = 16
COORDINATORS = 3
SEED = 20261127

CONFIRMED = re.compile(r"(?:call you back at the number ending in|devolverle la llamada al número que termina en) "
                       r"(\d) (\d) (\d) (\d)")
AREAS = ("617", "212", "415", "312", "646", "718", "202", "305")
WITHHELD = ("anonymous", "restricted", "", "unknown", "+266696687")


# ---- the callers ---------------------------------------------------------------------------
class HungUp(Exception):
    """The caller's script ran out at a prompt: they hang up there."""


@dataclass
class Caller(ScriptedCaller):
    def _next(self, kind: str) -> str:
        if not self.script:
            raise HungUp(kind)
        return self.script.pop(0)


class CheckedCall(SimulatedCall):
    """SimulatedCall whose every response must be a 200 with TwiML that keeps a caller going."""

    slowest = 0.0

    def post(self, url: str, data: dict[str, str]) -> ET.Element | None:
        if not url.startswith(("http://", "https://")):
            url = self.base + url
        parts = urlsplit(url)
        started = time.monotonic()
        response = self.client.post(
            parts.path + (f"?{parts.query}" if parts.query else ""), data=data,
            headers={"X-Twilio-Signature": self.validator.compute_signature(url, data)},
            base_url=f"{parts.scheme}://{parts.netloc}")
        self.slowest = max(self.slowest, time.monotonic() - started)
        self.requests.append((url, data, response.status_code))
        if response.status_code != 200 or response.mimetype != "text/xml":
            raise ProtocolError(f"{parts.path} answered {response.status_code} {response.mimetype}")
        try:
            root = ET.fromstring(response.get_data(as_text=True))
            assert root.tag == "Response"
            check_invariants(root)
        except (ET.ParseError, AssertionError) as exc:
            raise ProtocolError(f"{parts.path} answered TwiML that strands the caller: {exc}") from None
        return root


class ProtocolError(Exception):
    """A webhook answered something Twilio could not use to keep the caller going."""


@dataclass
class Scenario:
    kind: str
    app: str  # "open" or "closed"
    from_number: str
    script: list[str]
    lang: str = "en"
    confirms: str | None = None  # the phone whose request the caller should hear confirmed
    missed: str | None = None  # the phone a missed-call item should be queued for
    crisis: bool = False
    hangs_up: bool = False  # the script ends at a prompt

    @property
    def recorded(self) -> bool:
        return any(step.startswith("rec:") and len(step) > 4 for step in self.script)


class Numbers:
    """Distinct valid US numbers, as caller IDs (+1...) or keyed in (10 digits)."""

    def __init__(self):
        self.next = 0

    def new(self) -> str:
        n, self.next = self.next, self.next + 1
        return f"+1{AREAS[n // 10000]}555{n % 10000:04d}"


def build_scenarios(rng: random.Random) -> list[Scenario]:
    numbers = Numbers()
    regulars = [numbers.new() for _ in range(25)]  # callers who ring more than once

    def lang_key():
        return rng.choice([("1", "en"), ("2", "es")])

    def to_transfer() -> list[str]:
        option = rng.choice("54123")
        if option in "54":
            return [option]
        if option == "1":  # five prescreen questions
            return ["1", *(rng.choice("12") for _ in range(5))]
        if option == "2":  # insurance: self-pay or not sure, or a plan and a carrier (spoken or skipped)
            return ["2", *rng.choice([["2"], ["3"], ["1", rng.choice("12345"), rng.choice(["say:Blue Cross", "1"])]])]
        return ["3", "1"]  # what a visit is like, then patient services

    def capture(caller_id: str | None, *, odd: bool = False) -> tuple[list[str], str]:
        """Callback capture to the end; (script, the phone it should store)."""
        script: list[str] = []
        keyed = None
        if caller_id and rng.random() < 0.85:
            script += (["", "1"] if odd else ["1"])  # this number
        else:
            keyed = numbers.new()
            if caller_id:
                script += ["2"]  # a different number
            if odd:  # a short number, silence, then a number entered twice
                first = numbers.new()
                script += ["123", "", first[2:], "2"]
            script += [keyed[2:], "1"]
        script += (["7", "", ""] if odd else [rng.choice("1234")])  # odd: three misses take "any time"
        script += [rng.choice("12")]
        if rng.random() < 0.4:
            # a message, or silence at the tone (then silence at the crisis key offered again)
            script += ["1", *rng.choice([["rec:I'd like to ask about Spravato"], ["rec:", ""]])]
        else:
            script += ["2"]
        return script, keyed or caller_id

    def transfer_fails() -> str:
        return rng.choice(["dial:busy", "dial:no-answer", "dial:voicemail", "dial:failed"])

    kinds = {
        "callback_closed": 22, "busy_callback": 18, "accepted": 7, "missed_menu": 11, "missed_withheld": 4,
        "missed_deeper": 6, "missed_keyed": 3, "crisis": 8, "odd_escalate": 6, "odd_keys": 8,
        "odd_no_number": 3, "regular_caller": 4,
    }
    scenarios = []
    for kind in rng.choices(list(kinds), weights=list(kinds.values()), k=CALLS):
        key, lang = lang_key()
        caller = numbers.new()
        withheld = rng.random() < 0.2
        from_number = rng.choice(WITHHELD) if withheld else caller
        caller_id = None if withheld else caller
        s = Scenario(kind, "closed", from_number, [key], lang)
        if kind in ("callback_closed", "regular_caller"):
            if kind == "regular_caller":
                s.from_number = caller_id = rng.choice(regulars)
            script, s.confirms = capture(caller_id)
            s.script += to_transfer() + script
        elif kind == "busy_callback":
            script, s.confirms = capture(caller_id)
            s.app, s.script = "open", s.script + to_transfer() + [transfer_fails()] + script
        elif kind == "accepted":
            s.app, s.script = "open", s.script + to_transfer() + ["dial:accept"]
        elif kind == "missed_menu":
            s.from_number, s.missed, s.hangs_up = caller, caller, True
            s.app = rng.choice(["open", "closed"])
        elif kind == "missed_withheld":
            s.from_number, s.hangs_up = rng.choice(WITHHELD), True
        elif kind == "missed_deeper":
            s.from_number, s.missed, s.hangs_up = caller, caller, True
            s.script += rng.choice([["1", "1", "2"], ["2", "1"], ["3", "2"], ["5", "1"]])
        elif kind == "missed_keyed":  # gave a number, then hung up at the next question
            keyed = numbers.new()
            s.from_number, s.missed, s.hangs_up = rng.choice(WITHHELD), keyed, True
            s.script += ["5", keyed[2:], "1"]
        elif kind == "crisis":
            s.crisis = True
            s.app = rng.choice(["open", "closed"])
            where = rng.choice([[], ["1", "1"], ["2"], ["3"]] + ([["5"]] if s.app == "closed" else []))
            s.script += where + ["9"] + rng.choice([["dial:accept"], ["dial:failed", "dial:accept"]])
        elif kind == "odd_escalate":  # silence at the greeting three times: English, to patient services
            s.lang, s.app = "en", rng.choice(["open", "closed"])
            script, s.confirms = capture(caller_id, odd=True)
            s.script = ["", "", ""] + (["dial:busy"] if s.app == "open" else []) + script
        elif kind == "odd_keys":  # wrong keys at the main menu, 0 for a person, odd answers in the capture
            s.app = rng.choice(["open", "closed"])
            script, s.confirms = capture(caller_id, odd=True)
            s.script += ["7", "8", "0"] + ([transfer_fails()] if s.app == "open" else []) + script
        elif kind == "odd_no_number":  # no caller ID and three bad numbers: told the hours, nothing queued
            s.from_number = rng.choice(WITHHELD)
            s.script += ["5", "123", "", "0000000000"]
        scenarios.append(s)
    return scenarios


@dataclass
class Result:
    scenario: Scenario
    call_sid: str = ""
    heard_last4: str | None = None
    transcript: str = ""
    requests: int = 0
    slowest: float = 0.0
    protocol_error: str | None = None  # never tolerated
    off_script: str | None = None  # the call went elsewhere than its script: only after a failure


def place_call(apps: dict, scenario: Scenario) -> Result:
    result = Result(scenario)
    caller = Caller(list(scenario.script))
    call = CheckedCall(apps[scenario.app], caller, from_number=scenario.from_number)
    result.call_sid = call.call_sid
    try:
        try:
            call.run()
            if scenario.hangs_up:
                result.off_script = "the call ended before the caller hung up"
            elif caller.script:
                result.off_script = f"the call ended with {caller.script} left to press"
        except HungUp:
            if not scenario.hangs_up:
                result.off_script = "the caller ran out of answers: the call went somewhere unexpected"
            call.hang_up()
    except ProtocolError as exc:
        result.protocol_error = str(exc)
    except Exception as exc:  # noqa: BLE001 (reported with its call)
        result.protocol_error = f"{type(exc).__name__}: {exc}"
    if result.off_script:
        last = [text[:120] for _, text in caller.heard[-2:]]
        result.off_script += f"; script {scenario.script}; last heard {last}"
    result.requests, result.slowest = len(call.requests), call.slowest
    result.transcript = caller.transcript
    heard = CONFIRMED.findall(result.transcript)
    if heard:
        result.heard_last4 = "".join(heard[-1])
    return result


class Failures(logging.Handler):
    """Webhook failures the app logged (it answers them with the fallback): (call SID, error)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.seen: list[tuple[str, BaseException | None]] = []

    def emit(self, record):
        self.seen.append((getattr(record, "call_sid", "") or "", record.exc_info[1] if record.exc_info else None))


def lock_timeout(error: BaseException | None) -> bool:
    """SQLite's write lock not granted within busy_timeout: the one failure SQLite may have here."""
    return isinstance(error, sa.exc.OperationalError) and "database is locked" in str(error)


# ---- the coordinators ------------------------------------------------------------------------
@dataclass
class Closing:
    """What a coordinator saw of a request in the transaction that closed it."""

    call_sid: str
    linked_calls: frozenset[str]


@dataclass
class CoordinatorLog:
    attempts: int = 0
    releases: int = 0
    closings: dict[int, Closing] = field(default_factory=dict)
    errors: list[BaseException] = field(default_factory=list)


OUTCOMES = ["booked", "call_back_later", "not_interested", "left_voicemail", "no_answer", "no_answer",
            "wrong_number"]


def coordinate(app, staff, seed: int, stop: threading.Event, log: CoordinatorLog, lock: threading.Lock):
    rng = random.Random(seed)
    policy = work.Policy.from_config(app.config)
    while not stop.is_set():
        try:
            with app.app_context():
                item = work.claim_next(db.session, staff, now_utc(), policy)
                db.session.commit()
                if item is None:
                    stop.wait(0.01)  # nothing to do yet: look again shortly
                    continue
                item_id = item.id  # the claim is held across transactions, as in the staff UI
                if rng.random() < 0.1:
                    work.release(db.session, item_id, staff, now_utc(), policy)
                    db.session.commit()
                    with lock:
                        log.releases += 1
                    continue
                request = work.log_attempt(db.session, item_id, staff, rng.choice(OUTCOMES), "soak",
                                           now_utc(), policy)
                closing = None
                if request.status == CLOSED:
                    linked = db.session.scalars(sa.select(Call.call_sid).where(Call.callback_id == item_id)).all()
                    closing = Closing(request.call_sid, frozenset(linked))
                db.session.commit()
            with lock:
                log.attempts += 1
                if closing is not None:
                    log.closings[item_id] = closing
        except Exception as exc:  # noqa: BLE001 (judged by the test; the coordinator carries on)
            with lock:
                log.errors.append(exc)


# ---- the soak ----------------------------------------------------------------------------------
def test_two_thousand_calls_at_once_while_coordinators_work_the_queue(make_app, database_url):
    backend = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    open_app = make_app(BUSINESS_HOURS="24/7")
    closed_app = make_app(BUSINESS_HOURS="Mon-Fri 08:00-18:00")
    closed_app.extensions["voiceline.clock"] = lambda: SATURDAY_EVENING
    staff_app = make_app()
    apps = {"open": open_app, "closed": closed_app}
    scenarios = build_scenarios(random.Random(SEED))
    team = [factories.staff(staff_app, f"soak{n}@clinic.example", name=f"Coordinator {n}") for n in range(COORDINATORS)]

    failures = Failures()
    views_log = logging.getLogger("voiceline.voice.views")
    views_log.addHandler(failures)
    stop, lock, log = threading.Event(), threading.Lock(), CoordinatorLog()
    coordinators = [threading.Thread(target=coordinate, args=(staff_app, person, SEED + n, stop, log, lock),
                                     name=f"coordinator-{n}") for n, person in enumerate(team)]
    started = time.monotonic()
    try:
        for thread in coordinators:
            thread.start()
        with ThreadPoolExecutor(CALL_THREADS, thread_name_prefix="caller") as pool:
            results = list(pool.map(lambda s: place_call(apps, s), scenarios))
    finally:
        stop.set()
        for thread in coordinators:
            thread.join(60)
        views_log.removeHandler(failures)
    elapsed = time.monotonic() - started
    assert not any(thread.is_alive() for thread in coordinators)

    webhooks = sum(r.requests for r in results)
    slowest = max(r.slowest for r in results)
    print(f"\n[{backend}] {CALLS} calls, {webhooks} webhooks in {elapsed:.1f} s ({webhooks / elapsed:.0f}/s, "
          f"slowest {slowest:.2f} s) on {CALL_THREADS} threads; {COORDINATORS} coordinators: {log.attempts} "
          f"attempts, {len(log.closings)} items closed, {log.releases} released; webhook failures "
          f"{len(failures.seen)}, coordinator failures {len(log.errors)}")

    # Every webhook answered 200 with TwiML that keeps the caller going.
    broken = [f"{r.scenario.kind} {r.call_sid}: {r.protocol_error}" for r in results if r.protocol_error]
    assert not broken, f"{len(broken)} calls got an unusable answer, e.g.\n" + "\n".join(broken[:10])

    # Failures inside the app: none on PostgreSQL; on SQLite only lock waits past busy_timeout.
    tolerated = lock_timeout if backend == "sqlite" else (lambda error: False)
    unexpected = [f"{sid}: {error!r}" for sid, error in failures.seen if not tolerated(error)]
    assert not unexpected, f"{len(unexpected)} webhooks failed, e.g.\n" + "\n".join(unexpected[:10])
    unexpected = [repr(error) for error in log.errors if not tolerated(error)]
    assert not unexpected, f"{len(unexpected)} coordinator errors, e.g.\n" + "\n".join(unexpected[:10])
    affected = {sid for sid, _ in failures.seen}
    assert len(affected) <= CALLS // 40, f"{len(affected)} calls hit SQLite lock timeouts"
    clean = [r for r in results if r.call_sid not in affected]
    off_script = [f"{r.scenario.kind} {r.call_sid}: {r.off_script}" for r in clean if r.off_script]
    assert not off_script, f"{len(off_script)} calls went off script, e.g.\n" + "\n".join(off_script[:10])

    # Each call went where its script led: the callback read back, or none.
    for r in clean:
        assert r.heard_last4 == (r.scenario.confirms[-4:] if r.scenario.confirms else None), (r.scenario, r.transcript)

    with staff_app.app_context():
        calls = {c.call_sid: c for c in db.session.scalars(sa.select(Call))}
        requests_by_id = {q.id: q for q in db.session.scalars(sa.select(CallbackRequest))}
        recordings = {rec.recording_sid: rec for rec in db.session.scalars(sa.select(Recording))}
        attempts = db.session.execute(sa.select(CallbackAttempt.callback_id, CallbackAttempt.staff_id)).all()
        audit = db.session.execute(
            sa.select(AuditEntry.callback_id, AuditEntry.staff_id, AuditEntry.action)
            .where(AuditEntry.action.in_(["claim", "attempt", "release"])).order_by(AuditEntry.id)).all()
        crisis_calls = set(db.session.scalars(sa.select(SafetyEvent.call_sid)))

    # Every call was recorded, and closed by its status callback.
    assert set(calls) == {r.call_sid for r in results}
    assert all(calls[r.call_sid].twilio_status == "completed" and calls[r.call_sid].ended_at for r in clean)

    # Every confirmed callback (whatever else happened on the call): stored once, linked from
    # its call, under the phone read back.
    by_phone = collections.defaultdict(list)
    for request in requests_by_id.values():
        by_phone[request.phone].append(request)
    for r in results:
        if not r.heard_last4:
            continue
        call = calls[r.call_sid]
        assert call.outcome == "callback_requested" and call.callback_id in requests_by_id, r.scenario
        request = requests_by_id[call.callback_id]
        assert request.phone[-4:] == r.heard_last4 and request.phone == r.scenario.confirms
        assert request.requested_by_caller and not request.missed
        if r.scenario.kind != "regular_caller":
            # A phone of its own: exactly one request, carrying this call's SID.
            assert [q.id for q in by_phone[request.phone]] == [request.id]
            assert request.call_sid == r.call_sid and request.language == r.scenario.lang
            if r.scenario.recorded and r.call_sid not in affected:
                assert recordings[request.recording_sid].status == "completed"

    # Nothing was merged into a request after a coordinator closed it (that callback would be lost).
    for callback_id, closing in log.closings.items():
        request = requests_by_id[callback_id]
        linked = frozenset(sid for sid, c in calls.items() if c.callback_id == callback_id)
        assert request.status == CLOSED
        assert (request.call_sid, linked) == (closing.call_sid, closing.linked_calls), (
            f"request #{callback_id} took in calls after it was closed: {sorted(linked - closing.linked_calls)}")

    # One open request per phone; every request belongs to a call that links to it.
    open_per_phone = collections.Counter(q.phone for q in requests_by_id.values() if q.status == OPEN)
    assert max(open_per_phone.values(), default=0) <= 1
    assert {c.callback_id for c in calls.values() if c.callback_id is not None} == set(requests_by_id)
    for request in requests_by_id.values():
        assert calls[request.call_sid].callback_id == request.id

    # Missed calls: an item for each call that hung up after the main menu with a number to
    # call back, and for nothing else.
    missed_expected = collections.Counter(r.scenario.missed for r in clean if r.scenario.missed)
    missed_stored = collections.Counter(q.phone for q in requests_by_id.values()
                                        if q.missed and q.call_sid not in affected)
    assert missed_stored == missed_expected
    assert sum(missed_expected.values()) > 0
    for r in clean:
        call = calls[r.call_sid]
        if r.scenario.missed:
            request = requests_by_id[call.callback_id]
            assert (request.reason, request.requested_by_caller, call.outcome) == ("missed_call", False, "missed")
        elif r.scenario.hangs_up:
            assert call.callback_id is None and call.outcome == "missed_no_number", r.scenario

    # Crisis presses are safety events, never queue items.
    expected_crisis = {r.call_sid for r in clean if r.scenario.crisis}
    assert expected_crisis <= crisis_calls <= expected_crisis | affected
    assert all(calls[sid].callback_id is None and calls[sid].outcome == "crisis_line" for sid in expected_crisis)
    for r in clean:
        if r.scenario.kind == "accepted":
            assert calls[r.call_sid].outcome == "transferred" and calls[r.call_sid].callback_id is None

    # Coordinators: in the audit log each item passes from one holder to the next, and every
    # attempt or release was made by the coordinator holding the item.
    holder: dict[int, int | None] = {}
    for callback_id, staff_id, action in audit:
        current = holder.get(callback_id)
        if action == "claim":
            assert current in (None, staff_id), f"#{callback_id} claimed by {staff_id} while {current} held it"
            holder[callback_id] = staff_id
        else:
            assert current == staff_id, f"#{callback_id}: {action} by {staff_id} while {current} held it"
            holder[callback_id] = None
    attempts_per_item = collections.Counter(callback_id for callback_id, _ in attempts)
    assert sum(attempts_per_item.values()) == log.attempts == sum(1 for *_, a in audit if a == "attempt")
    assert log.attempts > 0 and log.closings
    for callback_id, count in attempts_per_item.items():
        request = requests_by_id[callback_id]
        assert request.attempts == count
        assert request.unsuccessful_attempts <= staff_app.config["MAX_ATTEMPTS"]
        if request.status == CLOSED:
            assert request.claimed_by_id is None and request.outcome and request.closed_at
