"""How the staff pages write times, ages and waits: in clinic time, in words people read.

Times are stored in UTC; coordinators think in the clinic's zone (CLINIC_TIMEZONE), so every
time on a page goes through `clinic_time`: "Fri 27 Nov, 2:05 PM" (the year only when it is
not this year).
"""

from __future__ import annotations

import datetime as dt
import math

from flask import current_app

from voiceline.models import now_utc
from voiceline.staff.blueprint import bp


def clinic_zone():
    return current_app.config["CLINIC_TIMEZONE"]


def clinic_today() -> dt.date:
    return now_utc().astimezone(clinic_zone()).date()


def _day(local: dt.datetime, today: dt.date) -> str:
    text = f"{local:%a} {local.day} {local:%b}"
    return text if local.year == today.year else f"{text} {local.year}"


@bp.app_template_global("clinic_zone_words")
def clinic_zone_words() -> str:
    """Said once on every page, so a time in a row needs no zone of its own: "America/New_York,
    EST" (the abbreviation as it is now, EDT in summer)."""
    zone = clinic_zone()
    return f"{zone.key}, {now_utc().astimezone(zone).tzname()}"


@bp.app_template_filter("clinic_time")
def clinic_time(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    local = value.astimezone(clinic_zone())
    hour = local.hour % 12 or 12
    return f"{_day(local, clinic_today())}, {hour}:{local:%M} {local:%p}"


@bp.app_template_filter("clinic_date")
def clinic_date(value: dt.datetime | dt.date | None) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = value.astimezone(clinic_zone())
    return _day(value, clinic_today())


@bp.app_template_filter("iso")
def iso(value: dt.datetime | None) -> str:
    """For <time datetime="...">: machine-readable, so assistive tech can use it."""
    return value.isoformat() if value is not None else ""


def duration_words(delta: dt.timedelta) -> str:
    """A duration as people say it, two units at most: "45 min", "3 h 5 min", "2 d 4 h"."""
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 1:
        return "under 1 min"
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    return f"{mins} min"


@bp.app_template_filter("age")
def age(value: dt.datetime | None, now: dt.datetime | None = None) -> str:
    if value is None:
        return ""
    return duration_words((now or now_utc()) - value)


def wait_words(wait: dt.timedelta) -> str:
    """A throttle wait, rounded up: "30 seconds", "2 minutes"."""
    seconds = max(1, math.ceil(wait.total_seconds()))
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
