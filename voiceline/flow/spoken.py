"""Turning hours, times and days into words a caller hears, in English or Spanish.

The words come from the language files (day names, "through", "Eastern time"); only the
grammar of clock times lives here, because it differs between the two languages in ways a
template cannot express ("noon", "la 1 de la tarde").
"""

from __future__ import annotations

import datetime as dt

from voiceline.flow.model import Flow
from voiceline.hours import DAY_NAMES, MINUTES_PER_DAY, BusinessHours

ZONE_KEYS = {
    "America/New_York": "eastern", "America/Detroit": "eastern", "US/Eastern": "eastern",
    "America/Indiana/Indianapolis": "eastern", "America/Kentucky/Louisville": "eastern",
    "America/Chicago": "central", "US/Central": "central",
    "America/Denver": "mountain", "America/Phoenix": "mountain", "America/Boise": "mountain",
    "US/Mountain": "mountain", "US/Arizona": "mountain",
    "America/Los_Angeles": "pacific", "US/Pacific": "pacific",
    "America/Anchorage": "alaska", "US/Alaska": "alaska",
    "Pacific/Honolulu": "hawaii", "US/Hawaii": "hawaii",
}


def clock_time(lang: str, minutes: int) -> str:
    """08:00 -> "8 AM" / "las 8 de la mañana"; 13:00 -> "1 PM" / "la 1 de la tarde"."""
    hour, minute = divmod(minutes % MINUTES_PER_DAY, 60)
    if lang == "es":
        if minutes in (0, MINUTES_PER_DAY):
            return "la medianoche"
        h12 = hour % 12 or 12
        number = f"{h12}" if minute == 0 else f"{h12} y {minute}"
        if hour < 12:
            part = "de la mañana"
        elif hour == 12:
            part = "del mediodía"
        elif hour < 19:
            part = "de la tarde"
        else:
            part = "de la noche"
        article = "la" if h12 == 1 else "las"
        return f"{article} {number} {part}"
    if minutes in (0, MINUTES_PER_DAY):
        return "midnight"
    if hour == 12 and minute == 0:
        return "noon"
    h12 = hour % 12 or 12
    suffix = "AM" if hour < 12 else "PM"
    return f"{h12} {suffix}" if minute == 0 else f"{h12}:{minute:02d} {suffix}"


def _join(flow: Flow, lang: str, items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {flow.text(lang, 'hours.and')} " + items[-1]


def _same_hours(hours: BusinessHours) -> list[tuple[list[list[int]], tuple[tuple[int, int], ...]]]:
    """The week's runs of days, those with the same hours named together ("Monday,
    Wednesday and Friday"), in the order of their first day."""
    by_hours: dict[tuple[tuple[int, int], ...], list[list[int]]] = {}
    for days, ranges in hours.groups():
        by_hours.setdefault(ranges, []).append(days)
    return [(runs, ranges) for ranges, runs in by_hours.items()]


def _run_words(flow: Flow, lang: str, run: list[int]) -> list[str]:
    """Three days or more in a row as a range ("de lunes a viernes"); fewer, each day named
    as a recurring day ("los sábados")."""
    if len(run) > 2:
        first, last = (flow.text(lang, f"hours.{DAY_NAMES[d]}") for d in (run[0], run[-1]))
        return [flow.text(lang, "hours.day_range", first=first, last=last)]
    return [flow.text(lang, f"hours.on_{DAY_NAMES[d]}") for d in run]


def hours_sentence(flow: Flow, lang: str, hours: BusinessHours, now: dt.datetime) -> str:
    """One or two sentences: today's holiday closure if any, then the weekly schedule."""
    if hours.mode == "always":
        return flow.text(lang, "hours.always")
    if hours.mode == "closed" or not any(hours.weekly):
        return flow.text(lang, "hours.none")
    items = []
    for runs, ranges in _same_hours(hours):
        day_text = _join(flow, lang, [part for run in runs for part in _run_words(flow, lang, run)])
        times = _join(flow, lang, [
            flow.text(lang, "hours.times", start=clock_time(lang, start), end=clock_time(lang, end))
            for start, end in ranges
        ])
        items.append(flow.text(lang, "hours.item", days=day_text, times=times))
    schedule = "; ".join(items)
    zone = ZONE_KEYS.get(getattr(hours.tz, "key", ""))
    if zone:
        sentence = flow.text(lang, "hours.sentence", schedule=schedule, zone=flow.text(lang, f"hours.zone_{zone}"))
    else:
        sentence = flow.text(lang, "hours.sentence_no_zone", schedule=schedule)
    today = hours.local(now).date()
    if today in hours.holidays and hours.weekly[today.weekday()]:
        sentence = f"{flow.text(lang, 'hours.holiday_today')} {sentence}"
    return sentence


def expected_call(flow: Flow, lang: str, hours: BusinessHours, now: dt.datetime, window: str) -> str:
    """"tomorrow, in the morning" / "el lunes, por la tarde" / "as soon as we can"."""
    expected = hours.expected_callback(now, window)
    if expected is None:
        return flow.text(lang, "callback.when_unknown")
    day = expected.day
    today = hours.local(now).date()
    if day == today:
        day_text = flow.text(lang, "callback.when_today")
    elif day == today + dt.timedelta(days=1):
        day_text = flow.text(lang, "callback.when_tomorrow")
    else:
        weekday = flow.text(lang, f"hours.{DAY_NAMES[day.weekday()]}")
        day_text = flow.text(lang, "callback.when_weekday", weekday=weekday)
    window_text = flow.text(lang, f"callback.window_phrase_{window if expected.in_window else 'any'}")
    return flow.text(lang, "callback.when_window", day=day_text, window=window_text)
