"""Business hours: when patient services answers the phone.

BUSINESS_HOURS is a weekly schedule in the clinic's own time zone, for example
``Mon-Fri 08:00-18:00; Sat 09:00-13:00`` (several ranges a day are allowed:
``Mon-Fri 08:00-12:00,13:00-17:00``), or ``24/7``, or ``closed``. On a weekly schedule the
days named by HOLIDAYS (US federal holidays by default) count as closed; ``24/7`` is open on
holidays too. All arithmetic happens in local wall-clock time through zoneinfo, so a
daylight-saving change moves nothing: 08:00 is 08:00 on both sides of it.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib
import importlib.util
import re
import sys
import types
from dataclasses import dataclass, field
from typing import NamedTuple
from zoneinfo import ZoneInfo

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MINUTES_PER_DAY = 24 * 60

# Preferred callback windows, in local minutes since midnight.
CALLBACK_WINDOWS: dict[str, tuple[int, int]] = {
    "morning": (8 * 60, 12 * 60),
    "afternoon": (12 * 60, 17 * 60),
    "evening": (17 * 60, 20 * 60),
    "any": (8 * 60, 20 * 60),
}

# "Today" is read back only if patient services is open for at least this long yet today,
# inside the caller's window: a coordinator needs time to reach them in the queue.
TODAY_MARGIN_MINUTES = 30


class ExpectedCallback(NamedTuple):
    day: dt.date
    in_window: bool  # False: the schedule never meets the caller's window; any time that day


_RANGE = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
_SEGMENT = re.compile(r"^(?P<days>[A-Za-z][A-Za-z,\-\s]*?)\s+(?P<ranges>\d.*)$")


@functools.cache
def us_federal_calendar() -> type:
    """The `holidays` library's United States calendar, without its other 250 countries.

    `holidays.US` first runs holidays/countries/__init__.py, which imports every country:
    about 8 MB more in every web worker, for one of them. The US module is loaded here with a
    stand-in for its package, removed again at once; if that ever stops working with a new
    release, the library's own way is used.
    """
    import holidays

    package = "holidays.countries"
    if package not in sys.modules:
        try:
            spec = importlib.util.find_spec(package)
            stand_in = types.ModuleType(package)
            stand_in.__path__ = list(spec.submodule_search_locations)
            sys.modules[package] = stand_in
            try:
                return importlib.import_module(f"{package}.united_states").UnitedStates
            finally:
                if sys.modules.get(package) is stand_in:
                    del sys.modules[package]
        except Exception:  # noqa: BLE001 - any surprise: fall back to the documented API
            pass
    return holidays.US


class HoursError(ValueError):
    """BUSINESS_HOURS or HOLIDAYS could not be read; the message says where."""


@dataclass(frozen=True)
class HolidayRule:
    """Which dates count as closed on a weekly schedule."""

    federal: bool = True
    extra: frozenset[dt.date] = frozenset()
    _calendar: dict = field(default_factory=dict, compare=False, repr=False)

    def __contains__(self, day: dt.date) -> bool:
        if day in self.extra:
            return True
        if not self.federal:
            return False
        calendar = self._calendar.get(day.year)
        if calendar is None:
            calendar = frozenset(us_federal_calendar()(years=day.year).keys())
            self._calendar[day.year] = calendar
        return day in calendar


def parse_holidays(text: str) -> HolidayRule:
    """``US`` (federal holidays), ``none``, or either plus ISO dates: ``US, 2026-12-24``."""
    federal = False
    extra: set[dt.date] = set()
    for token in re.split(r"[,\s]+", text.strip()):
        if not token or token.lower() == "none":
            continue
        if token.upper() == "US":
            federal = True
            continue
        try:
            extra.add(dt.date.fromisoformat(token))
        except ValueError:
            raise HoursError(f"expected US, none or dates like 2026-12-24, got {token!r}") from None
    return HolidayRule(federal=federal, extra=frozenset(extra))


def _day_index(name: str) -> int:
    key = name.strip().lower()
    if key in DAY_NAMES:
        return DAY_NAMES.index(key)
    if key in FULL_DAY_NAMES:
        return FULL_DAY_NAMES.index(key)
    raise HoursError(f"unknown day {name.strip()!r} (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)")


def _parse_days(text: str) -> list[int]:
    days: list[int] = []
    for part in text.split(","):
        if "-" in part:
            first, last = (_day_index(p) for p in part.split("-", 1))
            if last < first:
                raise HoursError(f"day range {part.strip()!r} must run forward, e.g. Mon-Fri")
            days.extend(range(first, last + 1))
        else:
            days.append(_day_index(part))
    return days


def _parse_range(text: str) -> tuple[int, int]:
    match = _RANGE.match(text.strip())
    if not match:
        raise HoursError(f"expected a time range like 08:00-18:00, got {text.strip()!r}")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
        raise HoursError(f"{text.strip()!r} is not a valid time range")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if end <= start:
        raise HoursError(f"{text.strip()!r}: closing time must be after opening time")
    return start, end


@dataclass(frozen=True)
class BusinessHours:
    mode: str  # "weekly", "always" or "closed"
    tz: ZoneInfo
    weekly: tuple[tuple[tuple[int, int], ...], ...] = ((),) * 7
    holidays: HolidayRule = HolidayRule(federal=False)
    source: str = ""

    @classmethod
    def parse(cls, text: str, tz: ZoneInfo, holidays: HolidayRule | None = None) -> BusinessHours:
        holidays = holidays if holidays is not None else HolidayRule()
        cleaned = " ".join(text.split())
        if cleaned.lower() == "24/7":
            return cls("always", tz, holidays=holidays, source=cleaned)
        if cleaned.lower() == "closed":
            return cls("closed", tz, holidays=holidays, source=cleaned)
        if not cleaned:
            raise HoursError("empty; use a schedule like 'Mon-Fri 08:00-18:00', or 24/7, or closed")
        week: list[list[tuple[int, int]]] = [[] for _ in range(7)]
        seen: set[int] = set()
        for segment in cleaned.split(";"):
            segment = segment.strip()
            if not segment:
                continue
            match = _SEGMENT.match(segment)
            if not match:
                raise HoursError(f"cannot read {segment!r}; expected days then times, e.g. 'Sat 09:00-13:00'")
            days = _parse_days(match["days"])
            ranges = sorted(_parse_range(r) for r in match["ranges"].split(","))
            for (_, end), (start, _) in zip(ranges, ranges[1:]):
                if start < end:
                    raise HoursError(f"{segment!r}: time ranges overlap")
            for day in days:
                if day in seen:
                    raise HoursError(f"{DAY_NAMES[day].title()} is given more than once")
                seen.add(day)
                week[day] = ranges
        return cls("weekly", tz, tuple(tuple(d) for d in week), holidays, cleaned)

    def local(self, at: dt.datetime) -> dt.datetime:
        if at.tzinfo is None:
            raise ValueError("business hours need an aware datetime")
        return at.astimezone(self.tz)

    def is_business_day(self, day: dt.date) -> bool:
        if self.mode == "always":
            return True
        if self.mode == "closed":
            return False
        return bool(self.weekly[day.weekday()]) and day not in self.holidays

    def is_open(self, at: dt.datetime) -> bool:
        local = self.local(at)  # first, so a naive clock fails on 24/7 and closed too
        if self.mode == "always":
            return True
        if self.mode == "closed":
            return False
        if not self.is_business_day(local.date()):
            return False
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.weekly[local.weekday()])

    def groups(self) -> list[tuple[list[int], tuple[tuple[int, int], ...]]]:
        """Runs of consecutive days with the same hours, for reading the schedule aloud."""
        out: list[tuple[list[int], tuple[tuple[int, int], ...]]] = []
        for day, ranges in enumerate(self.weekly):
            if not ranges:
                continue
            if out and out[-1][1] == ranges and out[-1][0][-1] == day - 1:
                out[-1][0].append(day)
            else:
                out.append(([day], ranges))
        return out

    def open_ranges(self, day: dt.date) -> tuple[tuple[int, int], ...]:
        """The day's opening hours in local minutes (none on a holiday or a closed day)."""
        if not self.is_business_day(day):
            return ()
        return ((0, MINUTES_PER_DAY),) if self.mode == "always" else self.weekly[day.weekday()]

    def expected_callback_day(self, now: dt.datetime, window: str) -> dt.date | None:
        """The first business day on which a call in `window` can still happen, or None."""
        expected = self.expected_callback(now, window)
        return expected.day if expected else None

    def expected_callback(self, now: dt.datetime, window: str) -> ExpectedCallback | None:
        """When the caller can expect the call back: what they are told ("we expect to call
        you tomorrow, in the morning"). An expectation read back, not a promise the queue
        enforces, so it must never be one the schedule cannot keep:

        - A day counts when patient services is open during the window, for at least
          TODAY_MARGIN_MINUTES more if the day is today (no "today" at 17:58 for a clinic
          that closes at 18:00).
        - If the schedule never overlaps the window (an evening window, hours ending at
          17:00), the next open day is given with `in_window` False: the caller is not told
          "in the evening" by a clinic that is never open then.
        """
        local = self.local(now)
        if self.mode == "closed":
            return None
        minute = local.hour * 60 + local.minute
        window_start, window_end = CALLBACK_WINDOWS.get(window, CALLBACK_WINDOWS["any"])
        for within_window in (True, False):
            for offset in range(0, 15):
                day = local.date() + dt.timedelta(days=offset)
                ranges = self.open_ranges(day)
                if within_window:
                    ranges = tuple((max(a, window_start), min(b, window_end)) for a, b in ranges
                                   if max(a, window_start) < min(b, window_end))
                if offset == 0:
                    ranges = tuple(r for r in ranges if r[1] - max(minute, r[0]) >= TODAY_MARGIN_MINUTES)
                if ranges:
                    return ExpectedCallback(day, within_window)
        return None
