"""Staff accounts and sign-in: scrypt hashes, the throttle, session versions, the CLI."""

import datetime as dt

import pytest
import sqlalchemy as sa

from tests import factories
from voiceline import auth
from voiceline.extensions import db
from voiceline.models import AuditEntry, CallbackRequest, SignInFailure, StaffUser, now_utc


def sign_in(app, email, password, address="10.0.0.1", now=None):
    with app.app_context():
        now = now or now_utc()
        result = auth.start_sign_in(db.session, email, address, now)
        db.session.commit()
        if result is None:
            result = auth.finish_sign_in(db.session, email, password, address, now)
            db.session.commit()
        return result


def audit(app):
    with app.app_context():
        return db.session.execute(sa.select(AuditEntry.action, AuditEntry.actor).order_by(AuditEntry.id)).all()


def test_add_staff_hashes_with_scrypt_and_is_audited(app):
    with app.app_context():
        staff = auth.add_staff(db.session, "  Ana@Clinic.Example ", "Ana", "admin", "a long enough password")
        db.session.commit()
        assert staff.email == "ana@clinic.example"
        assert staff.password_hash.startswith("scrypt:") and "a long enough" not in staff.password_hash
    assert audit(app) == [("staff_add", "system")]


@pytest.mark.parametrize("email,name,role,password,message", [
    ("not-an-email", "A", "coordinator", "long enough pw", "not an email"),
    ("a@b.org", "A", "boss", "long enough pw", "Role must be"),
    ("a@b.org", "  ", "coordinator", "long enough pw", "A name is needed"),
    ("a@b.org", "A", "coordinator", "short", "at least 10"),
])
def test_add_staff_refuses_bad_input(app, email, name, role, password, message):
    with app.app_context(), pytest.raises(auth.AccountError, match=message):
        auth.add_staff(db.session, email, name, role, password)


def test_duplicate_email_is_refused(app):
    factories.staff(app, "ana@clinic.example")
    with app.app_context(), pytest.raises(auth.AccountError, match="already an account"):
        auth.add_staff(db.session, "ANA@clinic.example", "Ana", "coordinator", "long enough pw")


def test_sign_in_succeeds_and_is_audited(app):
    factories.staff(app, "ana@clinic.example")
    result = sign_in(app, "Ana@Clinic.example", factories.PASSWORD)
    assert result.staff is not None and result.error is None
    assert audit(app)[-1] == ("sign_in", "ana@clinic.example")


def test_wrong_password_and_unknown_email_get_the_same_answer(app):
    factories.staff(app, "ana@clinic.example")
    wrong = sign_in(app, "ana@clinic.example", "wrong password!")
    unknown = sign_in(app, "nobody@clinic.example", "wrong password!")
    assert wrong.staff is None and wrong.error == unknown.error
    assert [a for a, _ in audit(app)] == ["sign_in_failed", "sign_in_failed"]


def test_five_failures_slow_the_account_down_even_with_the_right_password(app):
    factories.staff(app, "ana@clinic.example")
    now = now_utc()
    for i in range(5):
        result = sign_in(app, "ana@clinic.example", "wrong password!", address=f"10.0.0.{i}", now=now)
    assert result.wait is not None and result.wait <= dt.timedelta(seconds=30)
    blocked = sign_in(app, "ana@clinic.example", factories.PASSWORD, address="10.9.9.9", now=now)
    assert blocked.staff is None and "Too many failed sign-ins" in blocked.error
    later = sign_in(app, "ana@clinic.example", factories.PASSWORD, address="10.9.9.9",
                    now=now + dt.timedelta(seconds=31))
    assert later.staff is not None
    with app.app_context():
        key = auth.email_key("ana@clinic.example")
        assert db.session.scalar(sa.select(SignInFailure).where(SignInFailure.key == key)) is None


def test_a_password_typed_as_the_email_is_not_kept_by_the_throttle(app):
    sign_in(app, "Tr0ub4dor&3", "", address=None, now=now_utc())
    with app.app_context():
        [key] = db.session.scalars(sa.select(SignInFailure.key)).all()
        assert key == auth.email_key("Tr0ub4dor&3")
    assert "Tr0ub4dor" not in key.lower() and "tr0ub4dor" not in key


def test_five_failures_from_one_address_slow_that_address_down(app):
    factories.staff(app, "ana@clinic.example")
    now = now_utc()
    for i in range(auth.FREE_FAILURES):
        sign_in(app, f"guess{i}@clinic.example", "password guess", address="203.0.113.7", now=now)
    assert sign_in(app, "ana@clinic.example", factories.PASSWORD, address="203.0.113.7", now=now).staff is None
    assert sign_in(app, "ana@clinic.example", factories.PASSWORD, address="198.51.100.1", now=now).staff is not None


def test_colleagues_typos_from_one_office_slow_it_down_but_never_lock_it_out_for_long(app):
    """One clinic, one address: its typos add up to a wait of at most two minutes, however
    many there are; an account's own wait still grows to 15 minutes."""
    factories.staff(app, "ana@clinic.example")
    now = now_utc()
    waits = []
    for i in range(12):
        moment = now + dt.timedelta(minutes=3 * i)  # each after the office's last wait is over
        result = sign_in(app, f"colleague{i}@clinic.example", "a typo in it", address="203.0.113.7", now=moment)
        assert result.staff is None
        waits.append(round(result.wait.total_seconds()) if result.wait else None)
    assert waits == [None] * 4 + [30, 60, 120] + [120] * 5
    later = now + dt.timedelta(minutes=3 * 12)
    assert sign_in(app, "ana@clinic.example", factories.PASSWORD, address="203.0.113.7", now=later).staff is not None


def test_the_wait_doubles_and_is_capped(app):
    now = now_utc()
    waits = []
    for i in range(12):
        moment = now + dt.timedelta(minutes=i)  # within the 15-minute memory of failures
        result = sign_in(app, "x@clinic.example", "nope nope nope", address=None, now=moment)
        if result.wait:
            waits.append(round(result.wait.total_seconds()))
        if i >= 5:  # a blocked try does not count as a new failure; wait it out first
            with app.app_context():
                row = db.session.get(SignInFailure, auth.email_key("x@clinic.example"))
                row.blocked_until = None
                db.session.commit()
    assert waits[:4] == [30, 60, 120, 240] and max(waits) == 900


def test_disabling_ends_sessions_and_returns_claims(app):
    ana = factories.staff(app, "ana@clinic.example")
    item = factories.callback(app)
    with app.app_context():
        db.session.execute(sa.update(CallbackRequest).values(claimed_by_id=ana.id, claimed_at=now_utc()))
        staff = db.session.get(StaffUser, ana.id)
        session_id = staff.get_id()
        assert auth.load_user(session_id) is not None
        auth.set_active(db.session, staff, False, actor="cli")
        db.session.commit()
        assert auth.load_user(session_id) is None
        assert db.session.get(CallbackRequest, item).claimed_by_id is None
        assert sign_in(app, "ana@clinic.example", factories.PASSWORD).staff is None


def test_password_reset_ends_existing_sessions(app):
    ana = factories.staff(app, "ana@clinic.example")
    with app.app_context():
        staff = db.session.get(StaffUser, ana.id)
        old_session = staff.get_id()
        auth.reset_password(db.session, staff, "a brand new password")
        db.session.commit()
        assert auth.load_user(old_session) is None
        assert auth.load_user(staff.get_id()) is not None
    assert sign_in(app, "ana@clinic.example", "a brand new password").staff is not None


@pytest.mark.parametrize("bad_id", ["", "abc", "1", "1.x", "999.1"])
def test_odd_session_ids_load_nobody(app, bad_id):
    with app.app_context():
        assert auth.load_user(bad_id) is None


def test_staff_cli_add_disable_enable_reset(app, runner):
    result = runner.invoke(args=["staff", "add", "Ana@Clinic.example", "--name", "Ana Ng", "--role", "admin",
                                 "--password-stdin"], input="a very good password\n")
    assert result.exit_code == 0 and "Added admin ana@clinic.example" in result.output
    assert sign_in(app, "ana@clinic.example", "a very good password").staff is not None
    again = runner.invoke(args=["staff", "add", "ana@clinic.example", "--name", "Ana", "--password-stdin"],
                          input="a very good password\n")
    assert again.exit_code != 0 and "already an account" in again.output
    short = runner.invoke(args=["staff", "add", "b@clinic.example", "--name", "B", "--password-stdin"], input="short\n")
    assert short.exit_code != 0 and "at least 10" in short.output
    assert runner.invoke(args=["staff", "disable", "ana@clinic.example"]).exit_code == 0
    assert sign_in(app, "ana@clinic.example", "a very good password").staff is None
    assert runner.invoke(args=["staff", "enable", "ana@clinic.example"]).exit_code == 0
    reset = runner.invoke(args=["staff", "reset-password", "ana@clinic.example", "--password-stdin"],
                          input="another good password\n")
    assert reset.exit_code == 0
    assert sign_in(app, "ana@clinic.example", "another good password").staff is not None
    missing = runner.invoke(args=["staff", "disable", "nobody@clinic.example"])
    assert missing.exit_code != 0 and "No staff account" in missing.output
    listing = runner.invoke(args=["staff", "list"]).output
    assert "ana@clinic.example" in listing and "admin" in listing
    actions = [a for a, _ in audit(app)]
    assert actions.count("staff_add") == 1 and "staff_disable" in actions and "staff_password_reset" in actions


def test_staff_add_prompts_for_the_password_twice(app, runner):
    result = runner.invoke(args=["staff", "add", "c@clinic.example", "--name", "C"],
                           input="a fine password 1\na fine password 1\n")
    assert result.exit_code == 0, result.output
    assert sign_in(app, "c@clinic.example", "a fine password 1").staff is not None
