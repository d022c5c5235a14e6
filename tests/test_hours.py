"""Business hours: parsing BUSINESS_HOURS and HOLIDAYS, and deciding open/closed in clinic time."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest

from voiceline.hours import BusinessHours, HolidayRule, HoursError, parse_holidays

NY = ZoneInfo("America/New_York")
UTC = dt.UTC
WEEKDAYS = "Mon-Fri 08:00-18:00"


def hours(text: str, holidays: str = "none", tz: ZoneInfo = NY) -> BusinessHours:
    return BusinessHours.parse(text, tz, parse_holidays(holidays))


def local(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> dt.datetime:
    """A clinic wall-clock time, handed over as the aware UTC instant the app really uses."""
    return dt.datetime(y, m, d, hh, mm, ss, tzinfo=NY).astimezone(UTC)


def utc(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, tzinfo=UTC)


def span(h1: int, m1: int, h2: int, m2: int) -> tuple[int, int]:
    return (h1 * 60 + m1, h2 * 60 + m2)


# ---- parsing BUSINESS_HOURS ------------------------------------------------------------


def test_weekdays_and_saturday():
    parsed = hours("Mon-Fri 08:00-18:00; Sat 09:00-13:00")
    assert parsed.mode == "weekly"
    assert parsed.weekly == ((span(8, 0, 18, 0),),) * 5 + ((span(9, 0, 13, 0),), ())


def test_several_ranges_a_day_with_a_lunch_break():
    parsed = hours("Mon-Fri 08:00-12:00,13:00-17:00")
    assert parsed.weekly[:5] == ((span(8, 0, 12, 0), span(13, 0, 17, 0)),) * 5
    assert parsed.weekly[5:] == ((), ())


def test_ranges_are_stored_in_order_whatever_order_they_were_written():
    assert hours("Mon 13:00-17:00, 08:00-12:00").weekly[0] == (span(8, 0, 12, 0), span(13, 0, 17, 0))


def test_adjacent_ranges_do_not_count_as_overlapping():
    assert hours("Mon 08:00-12:00,12:00-17:00").weekly[0] == (span(8, 0, 12, 0), span(12, 0, 17, 0))


@pytest.mark.parametrize(
    "text",
    [
        "Monday-Friday 08:00-18:00; Saturday 09:00-13:00",
        "mon-FRI 08:00-18:00; SAT 09:00-13:00",
        "  Mon - Fri   08:00-18:00 ;Sat 09:00-13:00 ; ",
        "Mon,Tue,Wed,Thu,Fri 08:00-18:00; Saturday 9:00-13:00",
        "Mon-Wed, Thursday-Fri 08:00-18:00; Sat 09:00-13:00",
    ],
)
def test_spellings_of_the_same_schedule(text):
    assert hours(text).weekly == hours("Mon-Fri 08:00-18:00; Sat 09:00-13:00").weekly


def test_separate_days_with_different_hours():
    parsed = hours("Mon,Wed 08:00-12:00; Tue 10:00-14:00; Sun 11:00-15:00")
    assert parsed.weekly == (
        (span(8, 0, 12, 0),), (span(10, 0, 14, 0),), (span(8, 0, 12, 0),), (), (), (), (span(11, 0, 15, 0),),
    )


def test_midnight_as_24_00_ends_the_day():
    assert hours("Fri 20:00-24:00").weekly[4] == (span(20, 0, 24, 0),)


@pytest.mark.parametrize(("text", "mode"), [("24/7", "always"), (" 24/7 ", "always"), ("closed", "closed"),
                                            ("CLOSED", "closed"), ("Closed", "closed")])
def test_always_and_closed(text, mode):
    parsed = hours(text)
    assert parsed.mode == mode
    assert parsed.weekly == ((),) * 7


def test_source_keeps_the_schedule_with_whitespace_collapsed():
    assert hours("Mon-Fri   08:00-18:00;\n Sat 09:00-13:00").source == "Mon-Fri 08:00-18:00; Sat 09:00-13:00"


def test_groups_runs_of_consecutive_days_with_the_same_hours():
    parsed = hours("Mon-Wed 08:00-18:00; Thu 08:00-12:00; Fri 08:00-18:00; Sat-Sun 10:00-14:00")
    assert parsed.groups() == [
        ([0, 1, 2], (span(8, 0, 18, 0),)),
        ([3], (span(8, 0, 12, 0),)),
        ([4], (span(8, 0, 18, 0),)),
        ([5, 6], (span(10, 0, 14, 0),)),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Mon-Fri 08:00-18:00; Funday 09:00-13:00", "unknown day 'Funday'"),
        ("Mon-Fry 08:00-18:00", "unknown day 'Fry'"),
        ("Fri-Mon 08:00-18:00", "day range 'Fri-Mon' must run forward"),
        ("Mon 18:00-08:00", "'18:00-08:00': closing time must be after opening time"),
        ("Mon 08:00-08:00", "'08:00-08:00': closing time must be after opening time"),
        ("Mon 08:00-12:00,11:00-13:00", "'Mon 08:00-12:00,11:00-13:00': time ranges overlap"),
        ("Mon 08:00-12:00,08:00-12:00", "time ranges overlap"),
        ("Mon 08:00-18:00,09:00-10:00", "time ranges overlap"),
        ("Mon-Fri 08:00-18:00; Fri 09:00-13:00", "Fri is given more than once"),
        ("Mon,Mon 08:00-09:00", "Mon is given more than once"),
        ("Mon-Wed 08:00-09:00; Tuesday 10:00-11:00", "Tue is given more than once"),
        ("whenever", "cannot read 'whenever'"),
        ("Mon-Fri", "cannot read 'Mon-Fri'"),
        ("08:00-18:00", "cannot read '08:00-18:00'"),
        ("Mon-Fri 9am-5pm", "expected a time range like 08:00-18:00, got '9am-5pm'"),
        ("Mon-Fri 08:00-18:00,", "expected a time range like 08:00-18:00, got ''"),
        ("Mon 08:00-25:00", "'08:00-25:00' is not a valid time range"),
        ("Mon 24:00-24:00", "'24:00-24:00' is not a valid time range"),
        ("Mon 08:00-24:30", "'08:00-24:30' is not a valid time range"),
        ("Mon 08:60-09:00", "'08:60-09:00' is not a valid time range"),
        ("", "empty"),
        ("   ", "empty"),
        ("24/7; Sat 09:00-13:00", "cannot read '24/7'"),
    ],
)
def test_malformed_schedules_say_what_is_wrong(text, message):
    with pytest.raises(HoursError, match=re.escape(message)):
        hours(text)


def test_hours_error_is_a_value_error():
    assert issubclass(HoursError, ValueError)


# ---- HOLIDAYS ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "federal", "extra"),
    [
        ("US", True, set()),
        ("us", True, set()),
        ("none", False, set()),
        ("None", False, set()),
        ("US, 2026-12-24", True, {dt.date(2026, 12, 24)}),
        ("US 2026-12-24 2026-12-31", True, {dt.date(2026, 12, 24), dt.date(2026, 12, 31)}),
        ("none, 2026-12-24", False, {dt.date(2026, 12, 24)}),
        ("2026-12-24", False, {dt.date(2026, 12, 24)}),
    ],
)
def test_parse_holidays(text, federal, extra):
    rule = parse_holidays(text)
    assert (rule.federal, set(rule.extra)) == (federal, extra)


@pytest.mark.parametrize("token", ["Xmas", "12/24/2026", "2026-13-01", "UK", "US;"])
def test_bad_holiday_token_is_named(token):
    with pytest.raises(HoursError, match=re.escape(f"expected US, none or dates like 2026-12-24, got {token!r}")):
        parse_holidays(f"US, {token}")


@pytest.mark.parametrize(
    ("day", "closed"),
    [
        (dt.date(2026, 11, 26), True),  # Thanksgiving
        (dt.date(2026, 7, 3), True),  # Independence Day, observed on the Friday
        (dt.date(2026, 12, 25), True),  # Christmas
        (dt.date(2026, 1, 19), True),  # Martin Luther King Jr. Day
        (dt.date(2027, 1, 1), True),  # a second year is looked up too
        (dt.date(2026, 11, 27), False),  # the day after Thanksgiving is not federal
        (dt.date(2026, 12, 24), False),
    ],
)
def test_federal_holidays(day, closed):
    assert (day in parse_holidays("US")) is closed
    assert day not in parse_holidays("none")


def test_extra_dates_count_with_or_without_federal_holidays():
    assert dt.date(2026, 12, 24) in parse_holidays("US, 2026-12-24")
    assert dt.date(2026, 12, 25) in parse_holidays("US, 2026-12-24")
    assert dt.date(2026, 12, 24) in parse_holidays("2026-12-24")
    assert dt.date(2026, 12, 25) not in parse_holidays("2026-12-24")


def test_parse_without_a_holiday_rule_defaults_to_federal_holidays():
    parsed = BusinessHours.parse(WEEKDAYS, NY)
    assert parsed.holidays == HolidayRule(federal=True)
    assert not parsed.is_open(local(2026, 11, 26, 10))


# ---- is_open -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hh", "mm", "ss", "is_open"),
    [
        (7, 59, 59, False),
        (8, 0, 0, True),  # the opening minute is open
        (12, 0, 0, True),
        (17, 59, 59, True),
        (18, 0, 0, False),  # the closing minute is closed
        (23, 59, 0, False),
        (0, 0, 0, False),
    ],
)
def test_is_open_at_the_edges_of_the_day(hh, mm, ss, is_open):
    assert hours(WEEKDAYS).is_open(local(2026, 11, 23, hh, mm, ss)) is is_open  # a Monday


@pytest.mark.parametrize("day", [28, 29])
def test_weekends_are_closed_on_a_weekday_schedule(day):
    assert not hours(WEEKDAYS).is_open(local(2026, 11, day, 10))


@pytest.mark.parametrize(
    ("hh", "mm", "is_open"),
    [(11, 59, True), (12, 0, False), (12, 59, False), (13, 0, True), (16, 59, True), (17, 0, False)],
)
def test_is_open_around_a_lunch_break(hh, mm, is_open):
    assert hours("Mon-Fri 08:00-12:00,13:00-17:00").is_open(local(2026, 11, 23, hh, mm)) is is_open


@pytest.mark.parametrize(("hh", "mm"), [(0, 0), (12, 0), (23, 59)])
def test_a_day_ending_at_24_00_is_open_until_midnight(hh, mm):
    assert hours("Mon-Sun 00:00-24:00").is_open(local(2026, 11, 23, hh, mm))


def test_the_day_is_the_clinic_day_not_the_utc_day():
    # 23:30 on Friday in New York is already Saturday in UTC.
    late_friday = local(2026, 11, 20, 23, 30)
    assert late_friday.date() == dt.date(2026, 11, 21)
    assert hours("Mon-Fri 20:00-24:00").is_open(late_friday)
    assert not hours("Sat 00:00-24:00").is_open(late_friday)


def test_any_aware_time_zone_is_accepted():
    nine_am_eastern = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert hours(WEEKDAYS).is_open(nine_am_eastern)
    assert not hours(WEEKDAYS).is_open(nine_am_eastern - dt.timedelta(hours=2))


@pytest.mark.parametrize(
    ("moment", "is_open"),
    [
        (local(2026, 11, 26, 10), False),  # Thanksgiving
        (local(2026, 7, 3, 10), False),  # observed Independence Day
        (local(2026, 11, 27, 10), True),
        (local(2026, 7, 2, 10), True),
    ],
)
def test_federal_holidays_close_a_weekly_schedule(moment, is_open):
    assert hours(WEEKDAYS, "US").is_open(moment) is is_open
    assert hours(WEEKDAYS, "none").is_open(moment)


def test_extra_holiday_closes_the_day():
    assert not hours(WEEKDAYS, "US, 2026-12-24").is_open(local(2026, 12, 24, 10))
    assert hours(WEEKDAYS, "US").is_open(local(2026, 12, 24, 10))


@pytest.mark.parametrize("moment", [local(2026, 11, 26, 3), local(2026, 7, 3, 23, 59), local(2026, 11, 28, 10)])
def test_24_7_is_open_on_holidays_and_weekends(moment):
    assert hours("24/7", "US, 2026-11-28").is_open(moment)


@pytest.mark.parametrize("moment", [local(2026, 11, 23, 10), local(2026, 11, 28, 10)])
def test_closed_is_never_open(moment):
    assert not hours("closed").is_open(moment)


# ---- daylight-saving changes ---------------------------------------------------------------

DAILY = "Mon-Sun 08:00-18:00"


@pytest.mark.parametrize(
    ("moment", "is_open"),
    [
        # Spring forward on Sunday 2026-03-08: 08:00 is 13:00 UTC before, 12:00 UTC after.
        (utc(2026, 3, 7, 12, 59), False),
        (utc(2026, 3, 7, 13, 0), True),
        (utc(2026, 3, 7, 22, 59), True),
        (utc(2026, 3, 7, 23, 0), False),
        (utc(2026, 3, 8, 11, 59), False),
        (utc(2026, 3, 8, 12, 0), True),
        (utc(2026, 3, 8, 21, 59), True),
        (utc(2026, 3, 8, 22, 0), False),
        # Fall back on Sunday 2026-11-01: 08:00 is 12:00 UTC before, 13:00 UTC after.
        (utc(2026, 10, 31, 11, 59), False),
        (utc(2026, 10, 31, 12, 0), True),
        (utc(2026, 10, 31, 21, 59), True),
        (utc(2026, 10, 31, 22, 0), False),
        (utc(2026, 11, 1, 12, 0), False),  # 07:00 EST
        (utc(2026, 11, 1, 12, 59), False),
        (utc(2026, 11, 1, 13, 0), True),
        (utc(2026, 11, 1, 22, 59), True),
        (utc(2026, 11, 1, 23, 0), False),
    ],
)
def test_08_00_opens_on_both_sides_of_a_dst_change(moment, is_open):
    assert hours(DAILY).is_open(moment) is is_open


@pytest.mark.parametrize(
    ("moment", "is_open"),
    [
        (utc(2026, 3, 6, 13, 0), True),  # Friday before, EST
        (utc(2026, 3, 6, 12, 59), False),
        (utc(2026, 3, 9, 12, 0), True),  # Monday after, EDT
        (utc(2026, 3, 9, 11, 59), False),
        (utc(2026, 10, 30, 12, 0), True),  # Friday before, EDT
        (utc(2026, 11, 2, 13, 0), True),  # Monday after, EST
        (utc(2026, 11, 2, 12, 59), False),
    ],
)
def test_weekday_schedule_across_dst_weekends(moment, is_open):
    assert hours(WEEKDAYS).is_open(moment) is is_open


@pytest.mark.parametrize(("moment", "offset"), [(utc(2026, 3, 8, 12), -4), (utc(2026, 11, 1, 13), -5)])
def test_local_is_clinic_wall_clock(moment, offset):
    wall = hours(DAILY).local(moment)
    assert (wall.hour, wall.minute) == (8, 0)
    assert wall.utcoffset() == dt.timedelta(hours=offset)


# ---- naive datetimes -------------------------------------------------------------------------


@pytest.mark.parametrize("text", [WEEKDAYS, "24/7", "closed"])
def test_naive_datetime_is_rejected(text):
    naive = dt.datetime(2026, 11, 23, 10, 0)
    parsed = hours(text)
    with pytest.raises(ValueError, match="aware datetime"):
        parsed.is_open(naive)
    with pytest.raises(ValueError, match="aware datetime"):
        parsed.expected_callback_day(naive, "any")
    with pytest.raises(ValueError, match="aware datetime"):
        parsed.local(naive)


# ---- expected_callback_day ---------------------------------------------------------------------

MON = dt.date(2026, 11, 23)
TUE = dt.date(2026, 11, 24)


@pytest.mark.parametrize(
    ("hh", "mm", "window", "expected"),
    [
        (7, 0, "morning", MON),  # before opening: the window is still ahead today
        (9, 0, "any", MON),
        (11, 30, "morning", MON),
        (11, 31, "morning", TUE),
        (12, 0, "morning", TUE),  # the morning is over
        (16, 30, "afternoon", MON),  # half an hour of the afternoon left: still today
        (16, 31, "afternoon", TUE),  # less than TODAY_MARGIN_MINUTES: tomorrow
        (17, 0, "afternoon", TUE),
        (17, 30, "evening", MON),  # the evening window ends when the clinic closes at 18:00
        (17, 31, "evening", TUE),
        (18, 0, "evening", TUE),
        (17, 30, "any", MON),
        (17, 58, "any", TUE),  # not "today" two minutes before closing
        (18, 0, "any", TUE),
        (17, 30, "some-unknown-window", MON),  # treated as "any"
        (17, 31, "some-unknown-window", TUE),
    ],
)
def test_expected_callback_day_today_or_next_business_day(hh, mm, window, expected):
    assert hours(WEEKDAYS).expected_callback_day(local(2026, 11, 23, hh, mm), window) == expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (local(2026, 11, 20, 19), dt.date(2026, 11, 23)),  # Friday evening -> Monday
        (local(2026, 11, 28, 10), dt.date(2026, 11, 30)),  # Saturday -> Monday
        (local(2026, 11, 29, 10), dt.date(2026, 11, 30)),  # Sunday -> Monday
        (local(2026, 11, 25, 19), dt.date(2026, 11, 27)),  # Wednesday evening -> past Thanksgiving
        (local(2026, 11, 26, 10), dt.date(2026, 11, 27)),  # on Thanksgiving itself
        (local(2026, 7, 2, 19), dt.date(2026, 7, 6)),  # past the observed 4th and the weekend
        (local(2026, 12, 23, 19), dt.date(2026, 12, 28)),  # extra 24th, Christmas, weekend
    ],
)
def test_expected_callback_day_skips_weekends_and_holidays(now, expected):
    assert hours(WEEKDAYS, "US, 2026-12-24").expected_callback_day(now, "any") == expected


def test_expected_callback_day_uses_the_end_of_the_last_range():
    lunch = hours("Mon-Fri 08:00-12:00,13:00-17:00")
    assert lunch.expected_callback_day(local(2026, 11, 23, 16, 30), "any") == MON
    assert lunch.expected_callback_day(local(2026, 11, 23, 16, 31), "any") == TUE


def test_expected_callback_day_can_be_a_week_away():
    assert hours("Mon 08:00-09:00").expected_callback_day(local(2026, 11, 23, 10), "any") == dt.date(2026, 11, 30)


@pytest.mark.parametrize(
    ("now", "window", "expected"),
    [
        (local(2026, 11, 23, 19, 30), "any", MON),
        (local(2026, 11, 23, 19, 31), "any", TUE),
        (local(2026, 11, 23, 19, 0), "evening", MON),
        (local(2026, 11, 23, 13, 0), "morning", TUE),
        (local(2026, 11, 26, 10), "any", dt.date(2026, 11, 26)),  # holidays do not matter
        (local(2026, 11, 28, 10), "any", dt.date(2026, 11, 28)),  # nor weekends
    ],
)
def test_expected_callback_day_on_24_7(now, window, expected):
    assert hours("24/7", "US").expected_callback_day(now, window) == expected


@pytest.mark.parametrize("window", ["morning", "afternoon", "evening", "any"])
def test_expected_callback_day_is_none_when_closed(window):
    assert hours("closed").expected_callback_day(local(2026, 11, 23, 9), window) is None


def test_expected_callback_day_uses_the_clinic_date():
    # 19:30 on Friday in New York is already Saturday in UTC; the evening is still ahead.
    now = local(2026, 11, 20, 19, 30)
    assert now.date() == dt.date(2026, 11, 21)
    assert hours("Mon-Fri 08:00-24:00").expected_callback_day(now, "any") == dt.date(2026, 11, 20)


def test_expected_callback_day_needs_the_clinic_open_during_the_window():
    afternoons = hours("Mon-Fri 13:00-17:00; Sat 09:00-13:00")
    # At 09:00 on Monday a "morning" call cannot happen today: nobody is on duty until 13:00.
    assert afternoons.expected_callback_day(local(2026, 11, 23, 9), "morning") == dt.date(2026, 11, 28)
    assert afternoons.expected_callback_day(local(2026, 11, 23, 9), "afternoon") == MON


def test_expected_callback_day_falls_back_when_no_day_covers_the_window():
    # The schedule never reaches the evening: the caller hears the next open day instead.
    early = hours(WEEKDAYS.replace("18:00", "16:00"))
    assert early.expected_callback_day(local(2026, 11, 23, 9), "evening") == MON
    assert early.expected_callback(local(2026, 11, 23, 9), "evening") == (MON, False)
    assert early.expected_callback(local(2026, 11, 23, 9), "afternoon") == (MON, True)


def test_the_lean_us_calendar_matches_the_librarys_own():
    """In a fresh interpreter, where the lean path is taken (nothing else imported holidays)."""
    import subprocess
    import sys

    script = (
        "import sys, holidays\n"
        "from voiceline.hours import us_federal_calendar\n"
        "lean = us_federal_calendar()\n"
        "assert lean.__module__ == 'holidays.countries.united_states', lean\n"
        "assert 'holidays.countries.canada' not in sys.modules\n"
        "assert 'holidays.countries' not in sys.modules\n"
        "years = (2024, 2026, 2030, 2045)\n"
        "mine = [dict(lean(years=y)) for y in years]\n"
        "assert mine == [dict(holidays.US(years=y)) for y in years]\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "ok", result.stderr
