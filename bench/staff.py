"""Staff side: 100,000 callback requests in the database, then the queue page and Next.

Seeding is a bulk insert (SQLAlchemy core executemany; on PostgreSQL followed by ANALYZE, as
autovacuum would do shortly after such a load) of a realistic mix: mostly closed history over
a year, some open (recent), a few claimed by other coordinators (live and lapsed claims),
requested and missed calls, both languages, prescreen/insurance answers as JSON.

Measured two ways:
  services  in process: voiceline.queue.listing.queue_page and voiceline.queue.work.claim_next
            (+ commit), one fresh session each time: the database work without HTTP/templates
  http      against the running gunicorn: GET /staff/ (the queue page) and POST /staff/next,
            signed in through the sign-in form with its CSRF token, cookies kept by hand
            (the server runs VOICELINE_ENV=production: its cookies are marked Secure, which a
            browser would not send over http; this client sends them anyway)
"""

from __future__ import annotations

import datetime as dt
import http.client
import random
import re
import time
import uuid
from urllib.parse import urlencode, urlsplit

import sqlalchemy as sa

BENCH_EMAIL = "bench.coordinator@example.org"
BENCH_PASSWORD = "bench-password-0123"
OPEN_SHARE = 0.10
MISSED_SHARE = 0.25
REASONS = [("candidacy", 40), ("insurance", 25), ("what_to_expect", 10), ("existing_patient", 10), ("general", 15)]
PRESCREEN = ("age_18_or_older", "mood_disorder_diagnosis", "tried_two_antidepressants", "under_care_now",
             "psychosis_blood_pressure_or_pregnancy")
CARRIERS = ("Aetna", "Blue Cross", "Cigna", "United", "Humana", "Kaiser", "Tufts", "Harvard Pilgrim")
SEED_PHONE_PREFIX = "+1781"  # the load generator's caller IDs use other area codes


def engine_for(url: str) -> sa.Engine:
    if url.startswith(("postgres://", "postgresql://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return sa.create_engine(url)


def seed(url: str, total: int, prompts_version: str, seed_value: int = 7) -> dict:
    """Add staff accounts, then callback requests until the table holds `total` rows."""
    from voiceline.auth import hash_password
    from voiceline.models import CallbackRequest, StaffUser
    from voiceline.queue.work import OUTCOMES, UNREACHABLE

    rng = random.Random(seed_value)
    engine = engine_for(url)
    staff_table, callbacks = StaffUser.__table__, CallbackRequest.__table__
    now = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    password_hash = hash_password(BENCH_PASSWORD)
    with engine.begin() as conn:
        conn.execute(staff_table.insert(), [
            {"email": BENCH_EMAIL, "name": "Bench Coordinator", "role": "coordinator", "password_hash": password_hash,
             "active": True, "session_version": 1, "created_at": now},
            *({"email": f"coordinator{i}@example.org", "name": f"Coordinator {i}",
               "role": "admin" if i == 0 else "coordinator", "password_hash": password_hash, "active": True,
               "session_version": 1, "created_at": now} for i in range(6)),
        ])
        staff_ids = [row[0] for row in conn.execute(
            sa.select(staff_table.c.id).where(staff_table.c.email != BENCH_EMAIL))]
        existing = conn.scalar(sa.select(sa.func.count()).select_from(callbacks))
    to_add = max(0, total - existing)
    outcomes = [*OUTCOMES, UNREACHABLE]
    reasons, reason_weights = zip(*REASONS)
    batch: list[dict] = []
    opened = 0
    with engine.begin() as conn:
        for i in range(to_add):
            is_open = rng.random() < OPEN_SHARE
            missed = rng.random() < MISSED_SHARE
            reason = "missed_call" if missed else rng.choices(reasons, reason_weights)[0]
            if is_open:
                created = now - dt.timedelta(seconds=rng.uniform(60, 10 * 86400))
            else:
                created = now - dt.timedelta(seconds=rng.uniform(86400, 365 * 86400))
            answers: dict = {}
            if reason == "candidacy" or (missed and rng.random() < 0.3):
                answers = {field: rng.choice(("yes", "no")) for field in PRESCREEN}
            elif reason == "insurance":
                answers = {"coverage": rng.choice(("insurance", "self_pay", "not_sure"))}
                if answers["coverage"] == "insurance":
                    answers["plan_type"] = rng.choice(("commercial", "medicare", "medicaid", "va_tricare", "other"))
                    if rng.random() < 0.6:
                        answers["carrier"] = rng.choice(CARRIERS)
            row = {
                "phone": f"{SEED_PHONE_PREFIX}{200 + i // 10_000:03d}{i % 10_000:04d}",
                "status": "open" if is_open else "closed",
                "language": "es" if rng.random() < 0.25 else "en",
                "reason": reason,
                "requested_by_caller": not missed,
                "missed": missed,
                "priority": 20 if missed else 10,
                "answers": answers,
                "preferred_window": None if missed else rng.choice(("morning", "afternoon", "evening", "any")),
                "voicemail_ok": None if missed else rng.random() < 0.6,
                "recording_sid": "RE" + uuid.UUID(int=rng.getrandbits(128)).hex if rng.random() < 0.3 else None,
                "call_sid": "CA" + uuid.UUID(int=rng.getrandbits(128)).hex,
                "prompts_version": prompts_version,
                "created_at": created,
                "updated_at": created,
                "claimed_by_id": None, "claimed_at": None,
                "attempts": 0, "unsuccessful_attempts": 0, "last_attempt_at": None,
                "closed_at": None, "outcome": None, "closed_by_id": None,
            }
            if is_open:
                opened += 1
                roll = rng.random()
                if roll < 0.03:  # a live claim by another coordinator
                    row.update(claimed_by_id=rng.choice(staff_ids), claimed_at=now - dt.timedelta(minutes=5))
                elif roll < 0.05:  # a claim that has lapsed
                    row.update(claimed_by_id=rng.choice(staff_ids), claimed_at=now - dt.timedelta(hours=2))
                tries = rng.choice((0, 0, 0, 1, 2))
                row.update(attempts=tries, unsuccessful_attempts=tries)
                if tries:  # some tried within RETRY_AFTER_MINUTES (60): Next must skip those
                    row.update(last_attempt_at=max(created, now - dt.timedelta(minutes=rng.uniform(1, 600))))
            else:
                closed = created + dt.timedelta(seconds=rng.uniform(3600, 72 * 3600))
                outcome = rng.choice(outcomes)
                tries = 3 if outcome == UNREACHABLE else rng.randint(1, 3)
                row.update(closed_at=closed, outcome=outcome, closed_by_id=rng.choice(staff_ids),
                           last_attempt_at=closed, attempts=tries, unsuccessful_attempts=tries - 1 if outcome != UNREACHABLE else tries,
                           updated_at=closed)
            batch.append(row)
            if len(batch) >= 5000:
                conn.execute(callbacks.insert(), batch)
                batch = []
        if batch:
            conn.execute(callbacks.insert(), batch)
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
        total_rows = conn.scalar(sa.select(sa.func.count()).select_from(callbacks))
        open_rows = conn.scalar(sa.select(sa.func.count()).select_from(callbacks).where(callbacks.c.status == "open"))
    engine.dispose()
    return {"existing": existing, "added": to_add, "added_open": opened, "total": total_rows,
            "open": open_rows, "seconds": round(time.perf_counter() - t0, 1)}


def _stats(samples: list[float]) -> dict:
    values = sorted(samples)
    if not values:
        return {"count": 0}

    def pct(q):
        import math
        return round(values[min(len(values), max(1, math.ceil(q * len(values)))) - 1] * 1000, 2)

    return {"count": len(values), "p50_ms": pct(0.5), "p95_ms": pct(0.95), "max_ms": round(values[-1] * 1000, 2)}


def measure_services(app_config: dict, iterations: int) -> dict:
    """In process, one fresh session per call: the services the queue page and Next use."""
    from voiceline import create_app
    from voiceline.extensions import db
    from voiceline.models import StaffUser, now_utc
    from voiceline.queue.listing import Filters, queue_page
    from voiceline.queue.work import Policy, claim_next, release_all

    app = create_app(app_config)
    results: dict[str, dict] = {}
    with app.app_context():
        policy = Policy.from_config(app.config)
        staff_id = db.session.scalar(sa.select(StaffUser.id).where(StaffUser.email == BENCH_EMAIL))
        db.session.remove()

        def timed(name: str, action, n: int = iterations, warm: int = 3) -> None:
            samples = []
            for i in range(warm + n):
                staff = db.session.get(StaffUser, staff_id)
                t0 = time.perf_counter()
                action(staff)
                elapsed = time.perf_counter() - t0
                db.session.remove()
                if i >= warm:
                    samples.append(elapsed)
            results[name] = _stats(samples)

        total_open = {}

        def open_page(staff):
            page = queue_page(db.session, Filters(), staff, now_utc(), policy)
            total_open["n"] = page.total
            assert len(page.items) == min(page.per_page, page.total)

        timed("queue_page (open, page 1)", open_page)
        extra = max(10, iterations // 3)
        timed("queue_page (open, page 100)",
              lambda staff: queue_page(db.session, Filters(), staff, now_utc(), policy, page=100), n=extra)
        timed("queue_page (closed, page 1)",
              lambda staff: queue_page(db.session, Filters(status="closed"), staff, now_utc(), policy), n=extra)

        claimed = []

        def next_one(staff):
            item = claim_next(db.session, staff, now_utc(), policy)
            db.session.commit()
            claimed.append(item.id if item is not None else None)

        timed("claim_next + commit", next_one)
        results["_notes"] = {"open_items": total_open.get("n"), "next_claimed": sum(1 for c in claimed if c),
                             "next_distinct": len(set(claimed))}
        # Untimed: give them back, or Next over HTTP (the same account) only reopens the one held.
        release_all(db.session, db.session.get(StaffUser, staff_id))
        db.session.commit()
        db.engine.dispose()
    return results


# ---- over HTTP ---------------------------------------------------------------------------------
CSRF = re.compile(r'<input[^>]*name="csrf_token"[^>]*value="([^"]+)"|<input[^>]*value="([^"]+)"[^>]*name="csrf_token"')


class Browser:
    """Just enough of a browser: cookies (Secure ignored: plain http to 127.0.0.1), no redirects."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict | None = None) -> tuple[int, dict, str, float]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Host": f"127.0.0.1:{self.port}", "User-Agent": "voiceline-bench"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = f"http://127.0.0.1:{self.port}"
            headers["Referer"] = f"http://127.0.0.1:{self.port}{path}"
        t0 = time.perf_counter()
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        elapsed = time.perf_counter() - t0
        conn.close()
        for raw in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = raw.partition("=")
            value = rest.split(";", 1)[0]
            expired = "max-age=0" in raw.lower() or "expires=thu, 01 jan 1970" in raw.lower()
            if expired or not value:
                self.cookies.pop(name.strip(), None)
            else:
                self.cookies[name.strip()] = value
        return response.status, dict(response.headers), text, elapsed


def csrf_token(page: str) -> str | None:
    match = CSRF.search(page)
    return (match.group(1) or match.group(2)) if match else None


def staff_routes(app) -> dict[str, str] | None:
    """The sign-in, queue and Next URLs if the staff UI has them, else None."""
    rules = {rule.endpoint: rule for rule in app.url_map.iter_rules()}
    by_path = {(rule.rule, method): rule for rule in app.url_map.iter_rules() for method in rule.methods}
    login = rules.get("staff.login")
    queue = by_path.get(("/staff/", "GET"))
    nxt = by_path.get(("/staff/next", "POST"))
    if login is None or queue is None or nxt is None:
        return None
    return {"login": login.rule, "queue": queue.rule, "next": nxt.rule}


def measure_http(port: int, routes: dict[str, str], iterations: int, probe=None) -> dict:
    """Sign in, then time the queue page and Next. `probe()` -> the workers' peak RSS (MB), read
    before and after each phase: the sign-in's password check (scrypt) is memory-hungry."""
    peaks = {"before sign-in": probe()} if probe else {}
    browser = Browser(port)
    status, _, page, _ = browser.request("GET", routes["login"])
    token = csrf_token(page)
    if status != 200 or not token:
        return {"error": f"sign-in page: status {status}, CSRF token {'found' if token else 'not found'}"}
    status, headers, page, _ = browser.request(
        "POST", routes["login"], {"csrf_token": token, "email": BENCH_EMAIL, "password": BENCH_PASSWORD})
    if status not in (302, 303):
        return {"error": f"sign-in answered {status} (expected a redirect)"}
    if probe:
        peaks["after sign-in"] = probe()
    results: dict[str, dict] = {"_peak_rss_mb": peaks}
    samples, statuses = [], {}
    token = None
    for i in range(iterations + 3):
        status, _, page, elapsed = browser.request("GET", routes["queue"])
        statuses[status] = statuses.get(status, 0) + 1
        token = csrf_token(page) or token
        if i >= 3:
            samples.append(elapsed)
    results["GET /staff/ (queue page)"] = {**_stats(samples), "statuses": statuses}
    if probe:
        peaks["after the queue pages"] = probe()
    if not token:
        results["POST /staff/next"] = {"error": "no CSRF token on the queue page"}
        return results
    samples, statuses, landed = [], {}, set()
    for i in range(iterations + 3):
        status, headers, _, elapsed = browser.request("POST", routes["next"], {"csrf_token": token})
        statuses[status] = statuses.get(status, 0) + 1
        opened = urlsplit(headers.get("Location", "")).path
        landed.add(opened)
        if i >= 3:
            samples.append(elapsed)
        if opened.startswith("/staff/callbacks/"):  # untimed: give it back, or the next Next just reopens it
            browser.request("POST", opened + "/release", {"csrf_token": token})
    results["POST /staff/next"] = {**_stats(samples), "statuses": statuses, "distinct_redirects": len(landed)}
    if probe:
        peaks["after Next"] = probe()
    return results
