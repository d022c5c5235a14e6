"""Logging without patient data: phone numbers are masked to their last four digits, and
PostgreSQL's DETAIL lines (a constraint error's "Failing row contains (...)" lists a row's
values: answers, numbers) are withheld.

Code logs IDs (CallSid, callback id) in `extra`, never numbers or answers; this filter is
the second line of defence for anything that slips into a message anyway.

Lines carry ISO-8601 UTC times, and within a request its X-Request-ID (Heroku's router sets
one per request), as gunicorn's access log does (gunicorn.conf.py): a webhook's app lines and
its access line can be matched.
"""

from __future__ import annotations

import datetime as dt
import logging
import re

PHONE = re.compile(
    r"(?<![A-Za-z0-9])(?:\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?(\d{4})(?![A-Za-z0-9])"
)
# psycopg puts the server's DETAIL in the error's text, which SQLAlchemy's exception repeats.
DETAIL = re.compile(r"^DETAIL:.*$", re.MULTILINE)
DETAIL_WITHHELD = "DETAIL: (withheld from the log: it may hold caller data)"
EXTRA_FIELDS = ("call_sid", "callback_id", "recording_sid", "endpoint", "node", "path", "phone", "staff",
                "request_id")


# A request path is whatever the client sent: "/voice/x%0aFAKE LINE" decodes to a newline.
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def one_line(value: object) -> str:
    """An `extra` value as one line: control characters shown as \\xNN, so nobody can write a
    line of their own into the log."""
    return CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))


# Heroku's request ids are UUIDs; a client-sent one passes its router when 20 to 200 of these.
REQUEST_ID = re.compile(r"[A-Za-z0-9+/=_.:-]{1,200}")


def request_id(raw: str | None) -> str | None:
    """An X-Request-ID fit for a log line, or None. The header is whatever the client sent when
    no router replaces it: anything longer or stranger is left out, and a phone number in it
    is masked like any other."""
    raw = (raw or "").strip()
    return mask_numbers(raw) if REQUEST_ID.fullmatch(raw) else None


def current_request_id() -> str | None:
    from flask import has_request_context, request

    return request_id(request.headers.get("X-Request-ID")) if has_request_context() else None


def utc_timestamp(seconds: float) -> str:
    """2026-11-27T13:55:36.123Z: ISO 8601, in UTC, saying so."""
    moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class UTCFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 (logging's name)
        return utc_timestamp(record.created)


def mask_numbers(text: str) -> str:
    return PHONE.sub(lambda m: f"•••{m.group(1)}", text)


def without_caller_data(text: str) -> str:
    return mask_numbers(DETAIL.sub(DETAIL_WITHHELD, text))


class MaskPhoneNumbers(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_voiceline_masked", False):  # a second handler with this filter
            return True
        try:
            message = without_caller_data(record.getMessage())
        except (TypeError, ValueError):  # a bad format string: let logging report it as usual
            return True
        record._voiceline_masked = True
        if not getattr(record, "request_id", None):
            record.request_id = current_request_id()
        ids = mask_numbers(
            " ".join(f"{name}={one_line(getattr(record, name))}" for name in EXTRA_FIELDS
                     if getattr(record, name, None))
        )
        record.msg = f"{message} [{ids}]" if ids else message
        record.args = ()
        if record.exc_info and not record.exc_text:
            record.exc_text = without_caller_data(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not any(isinstance(f, MaskPhoneNumbers) for h in root.handlers for f in h.filters):
        handler = logging.StreamHandler()
        handler.setFormatter(UTCFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(MaskPhoneNumbers())
        root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("voiceline").setLevel(level)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
