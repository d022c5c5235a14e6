"""The staff blueprint and what guards every page of it.

Every route needs a signed-in account that has been active within SESSION_IDLE_MINUTES
(sign-in and the stylesheet excepted); admin pages also need the admin role. Responses carry
headers that keep patient data out of shared caches and other sites' frames.
"""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import InternalServerError

from voiceline import audit
from voiceline.database import is_outage, schema_missing
from voiceline.extensions import db, login_manager
from voiceline.models import StaffUser, now_utc
from voiceline.queue.work import Policy

bp = Blueprint("staff", __name__, url_prefix="/staff", template_folder="templates", static_folder="static")

OPEN_ENDPOINTS = frozenset({"staff.login", "staff.static"})
LAST_SEEN = "last_seen"  # in the session: when this person last did anything (epoch seconds)
# A plain, browser-session cookie saying when a signed-in page was last served. The session
# cookie itself expires after SESSION_IDLE_MINUTES, so without this the sign-in page could not
# tell "you were signed out for inactivity" from "you never signed in". It holds no secret.
SEEN_COOKIE = "voiceline_staff_seen"

# No scripts at all; styles, media and forms only from this origin; never framed.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; media-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def policy() -> Policy:
    return Policy.from_config(current_app.config)


def address() -> str | None:
    return request.remote_addr


def staff() -> StaffUser:
    """The signed-in account itself (not the proxy): services compare and store it."""
    return current_user._get_current_object()


def idle_minutes() -> int:
    return current_app.config["SESSION_IDLE_MINUTES"]


def idle_message() -> str:
    minutes = idle_minutes()
    return (f"You were signed out because there was no activity for {minutes} "
            f"minute{'s' if minutes != 1 else ''}. Please sign in again.")


def requested_page() -> int:
    """?page=, clamped to what SQL's OFFSET can take (paginate takes it on to the last page)."""
    return min(max(request.args.get("page", 1, type=int), 1), 1_000_000)


def paginate(stmt, page: int, per_page: int):
    """db.paginate, with a page past the last one shown as the last one, as the queue does (an
    old link or a changed filter must not say there is nothing when there is)."""
    found = db.paginate(stmt, page=page, per_page=per_page, error_out=False)
    if found.pages and page > found.pages:
        found = db.paginate(stmt, page=found.pages, per_page=per_page, error_out=False)
    return found


def safe_next(target: str | None) -> str | None:
    """A local path to return to after sign-in, or None: never another site."""
    if (not target or not target.startswith("/") or target.startswith("//") or "\\" in target
            or any(ord(ch) < 32 or ord(ch) == 127 for ch in target)):  # no header injection
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc != "":
        return None
    return target


def start_session(account: StaffUser) -> None:
    """Sign in on a fresh session (no fixation), marked permanent so it expires when idle."""
    session.clear()
    login_user(account)
    session.permanent = True
    session[LAST_SEEN] = now_utc().timestamp()


def end_session(reason: str) -> None:
    """Sign out: the audit entry is committed first, while we still know who it was."""
    account = staff()
    if reason == "signed_out":
        # The session lives in the cookie: without this a copy of it would still work. Every
        # session of the account ends, as after a password reset.
        account.session_version += 1
    audit.record(db.session, "sign_out", staff=account, detail={"reason": reason}, address=address())
    db.session.commit()
    logout_user()
    session.clear()
    g.forget_seen = True


def to_sign_in():
    """Where a signed-out request goes: the sign-in page, back here afterwards if it was a page."""
    target = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect(url_for("staff.login", next=safe_next(target)))


@bp.before_request
def require_recent_sign_in():
    """The staff guard. Idle time is checked here, on the server, from the session's own
    last-seen time: a stolen or replayed cookie stops working after SESSION_IDLE_MINUTES even
    if something kept it alive in a browser."""
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    now = now_utc().timestamp()
    if current_user.is_authenticated:
        last_seen = session.get(LAST_SEEN)
        if isinstance(last_seen, (int, float)) and now - last_seen <= idle_minutes() * 60:
            session[LAST_SEEN] = now
            session.permanent = True
            return None
        end_session("idle")
        flash(idle_message(), "info")
        return to_sign_in()
    seen = request.cookies.get(SEEN_COOKIE, "")
    if seen.isdigit():
        g.forget_seen = True
        if now - int(seen) >= idle_minutes() * 60 - 5:
            flash(idle_message(), "info")
        else:
            flash("Your session has ended. Please sign in again.", "info")
    else:
        flash("Please sign in to continue.", "info")
    return to_sign_in()


def admin_required(view):
    """Admin pages: 403 for anyone else (the blueprint guard has already required sign-in)."""
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_authenticated or not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    wrapped.admin_only = True
    return wrapped


def is_staff_path(path: str) -> bool:
    return path == bp.url_prefix or path.startswith(bp.url_prefix + "/")


@bp.after_app_request
def protect_response(response):
    """Every response under /staff/, also those no staff route made: the app's 404 for a
    mistyped URL, a 405, a request too large, an error page. (A blueprint's after_request
    runs only for URLs its routes matched.)"""
    if not is_staff_path(request.path):
        return response
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"  # CSRF's https referrer check needs it
    if not current_app.config["DEVELOPMENT"]:  # production is https only: browsers keep to it
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    if request.endpoint != "staff.static":
        response.headers["Cache-Control"] = "no-store"  # patient data: never kept by browsers or proxies
    return response


@bp.after_request
def remember_activity(response):
    """The last-seen cookie the sign-in page reads (see SEEN_COOKIE)."""
    if request.endpoint == "staff.static":
        return response
    cookie = {"path": bp.url_prefix, "secure": current_app.config["SESSION_COOKIE_SECURE"],
              "httponly": True, "samesite": "Lax"}
    if current_user.is_authenticated:
        response.set_cookie(SEEN_COOKIE, str(int(now_utc().timestamp())), **cookie)
    elif g.get("forget_seen"):
        response.delete_cookie(SEEN_COOKIE, **cookie)
    return response


def error_page(status: int, title: str, message: str):
    return render_template("staff/error.html", title=title, message=message), status


@bp.app_errorhandler(CSRFError)
def csrf_failed(exc):
    # Only staff forms carry CSRF tokens (the voice blueprint is exempt), so this is always
    # a staff page: an expired form after a long pause or a sign-in in another tab.
    # Say plainly that nothing was saved: a coordinator back from a long call must not believe
    # the outcome they typed is stored.
    minutes = current_app.config["SESSION_IDLE_MINUTES"]
    return error_page(400, "This form has expired",
                      "Nothing you entered on it was saved. For your security, forms stop working when "
                      f"you sign in again or after {minutes} minutes without activity (you are then signed "
                      "out). Go back, reload the page (sign in again if asked), and enter it again.")


def _rollback() -> None:
    try:
        db.session.rollback()
    except SQLAlchemyError:  # a connection already lost: nothing left to undo
        pass


def _as_signed_out() -> None:
    """Draw an error page as for a signed-out visitor: the account may not be loaded, or be
    loaded but expired by the rollback, and reloading it needs the database that failed."""
    g._login_user = login_manager.anonymous_user()


@bp.errorhandler(SQLAlchemyError)
def database_unavailable(error: SQLAlchemyError):
    """The database does not answer, or has no tables yet: a page that says so (503), and
    one line in the log. Any other database error is a bug: it goes on to the 500 page."""
    _rollback()
    if schema_missing(error):
        logged = "not set up (run voiceline db upgrade)"
        said = "The database has not been set up for this version of Voiceline: an admin needs to run " \
               "voiceline db upgrade."
    elif is_outage(error):
        logged = "not answering"
        said = "The database is not answering. Try again in a minute; if this goes on, tell your admin."
    else:
        raise error
    _as_signed_out()
    current_app.logger.warning("staff page %s: database %s (%s)", request.endpoint, logged, type(error).__name__)
    return error_page(503, "The database is not available",
                      "Staff pages cannot be shown right now. Callers still reach the phone line, which "
                      f"sends them to patient services or tells them when to call back. {said}")


@bp.errorhandler(InternalServerError)
def something_went_wrong(error):
    message = "The error has been logged for your admin. Go back and try again."
    try:
        return error_page(500, "Something went wrong", message)
    except SQLAlchemyError:  # the page's menu needs the account, and the database failed
        _rollback()
        _as_signed_out()
        return error_page(500, "Something went wrong", message)


@bp.errorhandler(403)
def forbidden(exc):
    return error_page(403, "Not available to your account",
                      "This page is for admins. Ask an admin if you need something from it.")


def not_found(exc):
    """A friendly page for staff URLs, including mistyped ones no route matches. The app's
    404 handler (`voiceline.unmatched_url`) calls this for paths under /staff/."""
    return error_page(404, "Not found", "There is nothing at this address. It may have been mistyped.")
