"""Logging without patient data: phone numbers are masked to their last four digits, and
PostgreSQL's DETAIL lines (a constraint error's "Failing row contains (...)" lists a row's
values: answers, numbers) are withheld.

Code logs IDs (CallSid, callback id) in `extra`, never numbers or answers; this filter is
the second line of defence for anything that slips into a message anyway.
"""

from __future__ import annotations

import logging
import re

PHONE = re.compile(
    r"(?<![A-Za-z0-9])(?:\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?(\d{4})(?![A-Za-z0-9])"
)
# psycopg puts the server's DETAIL in the error's text, which SQLAlchemy's exception repeats.
DETAIL = re.compile(r"^DETAIL:.*$", re.MULTILINE)
DETAIL_WITHHELD = "DETAIL: (withheld from the log: it may hold caller data)"
EXTRA_FIELDS = ("call_sid", "callback_id", "recording_sid", "endpoint", "node", "path", "phone", "staff")


# A request path is whatever the client sent: "/voice/x%0aFAKE LINE" decodes to a newline.
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def one_line(value: object) -> str:
    """An `extra` value as one line: control characters shown as \\xNN, so nobody can write a
    line of their own into the log."""
    return CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))


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
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(MaskPhoneNumbers())
        root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("voiceline").setLevel(level)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
