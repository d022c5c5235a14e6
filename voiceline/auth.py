"""Staff accounts: password hashing, sign-in with a throttle, and account management.

Passwords are hashed with scrypt at N=2^13, r=8, p=10: one of the settings the OWASP
Password Storage Cheat Sheet lists as equivalent to its N=2^17 recommendation, trading
memory for CPU (8 MiB and about a quarter second per hash). werkzeug's default (N=2^15)
would add 32 MiB to a web worker's peak memory at every sign-in; hashes made with other
parameters still verify.

After five failed sign-ins for an account, or from one address, further tries are refused
for a while that doubles with each new failure (30 s, 1 min, 2 min ... up to 15 min). Tries
are counted in the database, so every worker agrees, and before the password is checked, so
guesses sent at once agree too. A session carries the account's session version: disabling
an account or resetting its password ends its sessions everywhere.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import re
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from voiceline import audit
from voiceline.extensions import login_manager
from voiceline.models import SignInFailure, StaffUser
from voiceline.models.staff import ROLES
from voiceline.queue import work
from voiceline.upsert import upsert

FREE_FAILURES = 5  # for an account and for an address alike (issue 3)
FIRST_DELAY = dt.timedelta(seconds=30)
MAX_DELAY = dt.timedelta(minutes=15)
# An address is often a whole clinic's (one office, one NAT): it is slowed down after
# FREE_FAILURES like an account, but its wait stops growing here, so colleagues' typos together
# never lock the office out for long. A guesser spraying accounts from one address still gets
# a try every few minutes at most, and each account it tries waits up to MAX_DELAY on its own.
MAX_DELAY_PER_ADDRESS = dt.timedelta(minutes=2)
# Failures are counted for a day, so the wait keeps doubling to MAX_DELAY and stays there
# (forgotten after MAX_DELAY, a guesser would start again at 30 s after every pause).
FORGET_AFTER = dt.timedelta(hours=24)
MIN_PASSWORD_LENGTH = 10
PASSWORD_METHOD = "scrypt:8192:8:10"
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@functools.cache
def _dummy_hash() -> str:
    """Checked when the account does not exist, so timing does not reveal which emails do."""
    return generate_password_hash("not a real password", method=PASSWORD_METHOD)

class AccountError(Exception):
    """A staff account change that cannot be made; the message says why."""


def normalize_email(email: str) -> str:
    return (email or "").strip().lower()


def hash_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise AccountError(f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.")
    return generate_password_hash(password, method=PASSWORD_METHOD)


@login_manager.user_loader
def load_user(user_id: str) -> StaffUser | None:
    from voiceline.extensions import db

    staff_id, _, version = user_id.partition(".")
    if not staff_id.isdigit() or not version.isdigit():
        return None
    staff = db.session.get(StaffUser, int(staff_id))
    if staff is None or not staff.active or staff.session_version != int(version):
        return None
    return staff


# ---- the throttle -----------------------------------------------------------------------------
def email_key(email: str) -> str:
    """The throttle's key for what was typed as the email: keyed with SECRET_KEY, so a password
    typed into the email box is not kept readable (nor as a fast, guessable hash)."""
    secret = current_app.config["SECRET_KEY"].encode()
    return "email:" + hmac.new(secret, normalize_email(email).encode(), hashlib.sha256).hexdigest()


def _keys(email: str, address: str | None) -> list[str]:
    keys = [email_key(email)]
    if address:
        keys.append(f"ip:{address[:64]}")
    return keys


def _longest_wait(key: str) -> dt.timedelta:
    return MAX_DELAY_PER_ADDRESS if key.startswith("ip:") else MAX_DELAY


def blocked_for(session: Session, email: str, address: str | None, now: dt.datetime) -> dt.timedelta | None:
    """How much longer sign-in is refused for this account or address, if it is."""
    until = session.scalars(sa.select(SignInFailure.blocked_until)
                            .where(SignInFailure.key.in_(_keys(email, address)))).all()
    waits = [moment - now for moment in until if moment and moment > now]
    return max(waits) if waits else None


def _count_try(session: Session, key: str, now: dt.datetime) -> bool:
    """Count a try against `key` unless it must wait; whether it was counted. One statement,
    so two workers counting at once both count (and only one of them may be the fifth)."""
    table = SignInFailure.__table__
    fresh = table.c.last_failure_at > now - FORGET_AFTER
    row = upsert(session, SignInFailure, {"key": key, "failures": 1, "last_failure_at": now}, ["key"], {
        "failures": sa.case((fresh, table.c.failures + 1), else_=1),
        "last_failure_at": now,
    }, where=sa.or_(table.c.blocked_until.is_(None), table.c.blocked_until <= now),
        returning=[table.c.failures])
    if row is None:
        return False
    if row.failures >= FREE_FAILURES:
        delay = min(_longest_wait(key), FIRST_DELAY * 2 ** (row.failures - FREE_FAILURES))
        session.execute(sa.update(SignInFailure).where(SignInFailure.key == key)
                        .values(blocked_until=now + delay))
    return True


@dataclass
class SignInResult:
    staff: StaffUser | None = None
    error: str | None = None
    wait: dt.timedelta | None = None


def _who_tried(email: str) -> str:
    """The audit actor of a failed sign-in: what was typed only if it is an email address
    (a password typed into the email box must not end up in the audit log)."""
    if not email:
        return "(blank)"
    return email if EMAIL.match(email) else "(not an email address)"


def start_sign_in(session: Session, email: str, address: str | None, now: dt.datetime) -> SignInResult | None:
    """Count a sign-in try as a failure before its password is checked; a refusal if the
    account or address must wait first.

    The caller commits before calling finish_sign_in. The password check takes about a
    quarter of a second; a failure counted only after it would let thirty guesses sent at
    once all be checked. Counted first, the sixth waits. A right password forgives them.
    """
    email = normalize_email(email)
    keys = _keys(email, address)
    if blocked_for(session, email, address, now) is None and all(_count_try(session, key, now) for key in keys):
        return None
    audit.record(session, "sign_in_failed", actor=_who_tried(email), address=address, detail={"throttled": True})
    return SignInResult(error="Too many failed sign-ins. Please wait before trying again.",
                        wait=blocked_for(session, email, address, now))


def finish_sign_in(session: Session, email: str, password: str, address: str | None,
                   now: dt.datetime) -> SignInResult:
    """Check the password of a try start_sign_in counted; never say whether the email exists."""
    email = normalize_email(email)
    staff = session.scalar(sa.select(StaffUser).where(StaffUser.email == email))
    ok = check_password_hash(staff.password_hash if staff else _dummy_hash(), password or "")
    if not ok or staff is None or not staff.active:
        audit.record(session, "sign_in_failed", staff=staff, actor=_who_tried(email), address=address)
        return SignInResult(error="That email and password do not match an active account.",
                            wait=blocked_for(session, email, address, now))
    session.execute(sa.delete(SignInFailure).where(SignInFailure.key.in_(_keys(email, address))))
    staff.last_sign_in_at = now
    audit.record(session, "sign_in", staff=staff, address=address)
    return SignInResult(staff=staff)


# ---- account management -------------------------------------------------------------------------
def add_staff(session: Session, email: str, name: str, role: str, password: str, *,
              by: StaffUser | None = None, actor: str | None = None) -> StaffUser:
    email = normalize_email(email)
    if not EMAIL.match(email):
        raise AccountError(f"{email!r} is not an email address.")
    if role not in ROLES:
        raise AccountError(f"Role must be one of: {', '.join(ROLES)}.")
    name = (name or "").strip()
    if not name:
        raise AccountError("A name is needed (coordinators see who has claimed what).")
    if session.scalar(sa.select(StaffUser.id).where(StaffUser.email == email)) is not None:
        raise AccountError(f"There is already an account for {email}.")
    staff = StaffUser(email=email, name=name[:120], role=role, password_hash=hash_password(password))
    session.add(staff)
    session.flush()
    audit.record(session, "staff_add", staff=by, actor=actor, detail={"email": email, "role": role})
    return staff


def find_staff(session: Session, email: str) -> StaffUser:
    staff = session.scalar(sa.select(StaffUser).where(StaffUser.email == normalize_email(email)))
    if staff is None:
        raise AccountError(f"No staff account for {normalize_email(email)}.")
    return staff


def set_active(session: Session, staff: StaffUser, active: bool, *, by: StaffUser | None = None,
               actor: str | None = None) -> None:
    """Disable (ending every session and returning the person's claims to the queue) or enable."""
    if staff.active == active:
        return
    staff.active = active
    staff.session_version += 1
    if not active:
        work.release_all(session, staff)
    audit.record(session, "staff_enable" if active else "staff_disable", staff=by, actor=actor,
                 detail={"email": staff.email})


def reset_password(session: Session, staff: StaffUser, password: str, *, by: StaffUser | None = None,
                   actor: str | None = None) -> None:
    staff.password_hash = hash_password(password)
    staff.session_version += 1
    audit.record(session, "staff_password_reset", staff=by, actor=actor, detail={"email": staff.email})
