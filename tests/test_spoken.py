"""Hours, times and callback days as a caller hears them, in English and Spanish."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from voiceline.flow.prompts import load_flow
from voiceline.flow.spoken import clock_time, expected_call, hours_sentence
from voiceline.hours import BusinessHours, parse_holidays

PROMPTS = Path(__file__).resolve().parent.parent / "prompts"
NY = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def flow():
    return load_flow(PROMPTS)


def hours(text: str, holidays: str = "US", tz: str = "America/New_York") -> BusinessHours:
    return BusinessHours.parse(text, ZoneInfo(tz), parse_holidays(holidays))


def local(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, tzinfo=NY).astimezone(dt.UTC)


MONDAY_10AM = local(2026, 11, 23, 10)


# ---- clock_time --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minutes", "text"),
    [
        (8 * 60, "8 AM"),
        (8 * 60 + 30, "8:30 AM"),
        (9 * 60 + 5, "9:05 AM"),
        (12 * 60, "noon"),
        (12 * 60 + 30, "12:30 PM"),
        (13 * 60, "1 PM"),
        (18 * 60, "6 PM"),
        (20 * 60 + 30, "8:30 PM"),
        (0, "midnight"),
        (24 * 60, "midnight"),
        (30, "12:30 AM"),
    ],
)
def test_clock_time_english(minutes, text):
    assert clock_time("en", minutes) == text


@pytest.mark.parametrize(
    ("minutes", "text"),
    [
        (8 * 60, "las 8 de la mañana"),
        (8 * 60 + 30, "las 8 y 30 de la mañana"),
        (12 * 60, "las 12 del mediodía"),
        (13 * 60, "la 1 de la tarde"),
        (18 * 60, "las 6 de la tarde"),
        (19 * 60, "las 7 de la noche"),
        (20 * 60, "las 8 de la noche"),
        (0, "la medianoche"),
        (24 * 60, "la medianoche"),
    ],
)
def test_clock_time_spanish(minutes, text):
    assert clock_time("es", minutes) == text


# ---- hours_sentence ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lang", "schedule", "sentence"),
    [
        ("en", "Mon-Fri 08:00-18:00; Sat 09:00-13:00",
         "Our hours are Monday through Friday, 8 AM to 6 PM; Saturday, 9 AM to 1 PM, Eastern time."),
        ("es", "Mon-Fri 08:00-18:00; Sat 09:00-13:00",
         "Atendemos llamadas de lunes a viernes, de las 8 de la mañana a las 6 de la tarde; "
         "los sábados, de las 9 de la mañana a la 1 de la tarde, hora del Este."),
        ("en", "Mon-Fri 08:00-12:00,13:00-17:00",
         "Our hours are Monday through Friday, 8 AM to noon and 1 PM to 5 PM, Eastern time."),
        ("es", "Mon-Fri 08:00-12:00,13:00-17:00",
         "Atendemos llamadas de lunes a viernes, de las 8 de la mañana a las 12 del mediodía "
         "y de la 1 de la tarde a las 5 de la tarde, hora del Este."),
        ("en", "Sat-Sun 10:00-14:00", "Our hours are Saturday and Sunday, 10 AM to 2 PM, Eastern time."),
        ("es", "Sat-Sun 10:00-14:00",
         "Atendemos llamadas los sábados y los domingos, de las 10 de la mañana a las 2 de la tarde, "
         "hora del Este."),
        # Days with the same hours are named together, once, whether or not they are in a row.
        ("en", "Mon,Wed,Fri 09:30-17:00",
         "Our hours are Monday, Wednesday and Friday, 9:30 AM to 5 PM, Eastern time."),
        ("es", "Mon,Wed,Fri 09:30-17:00",
         "Atendemos llamadas los lunes, los miércoles y los viernes, de las 9 y 30 de la mañana "
         "a las 5 de la tarde, hora del Este."),
        ("en", "Mon-Thu 08:00-18:00; Fri 08:00-17:00; Sat 08:00-18:00",
         "Our hours are Monday through Thursday and Saturday, 8 AM to 6 PM; Friday, 8 AM to 5 PM, "
         "Eastern time."),
        ("es", "Mon-Thu 08:00-18:00; Fri 08:00-17:00; Sat 08:00-18:00",
         "Atendemos llamadas de lunes a jueves y los sábados, de las 8 de la mañana a las 6 de la tarde; "
         "los viernes, de las 8 de la mañana a las 5 de la tarde, hora del Este."),
        ("en", "Sun 12:00-16:00; Mon-Fri 08:00-18:00",
         "Our hours are Monday through Friday, 8 AM to 6 PM; Sunday, noon to 4 PM, Eastern time."),
    ],
)
def test_hours_sentence_for_a_weekly_schedule(flow, lang, schedule, sentence):
    assert hours_sentence(flow, lang, hours(schedule), MONDAY_10AM) == sentence


@pytest.mark.parametrize(
    ("tz", "lang", "sentence"),
    [
        ("America/Chicago", "en", "Our hours are Monday through Friday, 8 AM to 6 PM, Central time."),
        ("America/Los_Angeles", "es",
         "Atendemos llamadas de lunes a viernes, de las 8 de la mañana a las 6 de la tarde, hora del Pacífico."),
        ("Europe/London", "en", "Our hours are Monday through Friday, 8 AM to 6 PM."),
        ("Europe/London", "es", "Atendemos llamadas de lunes a viernes, de las 8 de la mañana a las 6 de la tarde."),
    ],
)
def test_hours_sentence_names_the_zone_when_it_has_a_spoken_name(flow, tz, lang, sentence):
    assert hours_sentence(flow, lang, hours("Mon-Fri 08:00-18:00", tz=tz), MONDAY_10AM) == sentence


@pytest.mark.parametrize(
    ("schedule", "lang", "sentence"),
    [
        ("24/7", "en", "Patient services answers calls 24 hours a day."),
        ("24/7", "es", "Atendemos llamadas las 24 horas del día."),
        ("closed", "en", "Patient services is not taking calls by phone right now."),
        ("closed", "es", "En este momento no atendemos llamadas por teléfono."),
    ],
)
def test_hours_sentence_for_24_7_and_closed(flow, schedule, lang, sentence):
    assert hours_sentence(flow, lang, hours(schedule), MONDAY_10AM) == sentence


def test_24_7_says_nothing_about_a_holiday(flow):
    thanksgiving = local(2026, 11, 26, 10)
    assert hours_sentence(flow, "en", hours("24/7"), thanksgiving) == "Patient services answers calls 24 hours a day."


@pytest.mark.parametrize(
    ("lang", "sentence"),
    [
        ("en", "We're closed today for the holiday. Our hours are Monday through Friday, 8 AM to 6 PM, "
               "Eastern time."),
        ("es", "Hoy estamos cerrados por el día feriado. Atendemos llamadas de lunes a viernes, "
               "de las 8 de la mañana a las 6 de la tarde, hora del Este."),
    ],
)
def test_hours_sentence_on_a_holiday(flow, lang, sentence):
    assert hours_sentence(flow, lang, hours("Mon-Fri 08:00-18:00"), local(2026, 11, 26, 10)) == sentence


@pytest.mark.parametrize(
    ("now", "holidays", "mentions_holiday"),
    [
        (local(2026, 11, 26, 22), "US", True),  # 03:00 UTC on the 27th, still Thanksgiving locally
        (local(2026, 11, 25, 23), "US", False),  # 04:00 UTC on Thanksgiving, still Wednesday locally
        (local(2026, 7, 3, 10), "US", True),  # observed Independence Day
        (local(2026, 7, 4, 10), "US", False),  # the 4th is a Saturday: no hours to be closed for
        (local(2026, 11, 26, 10), "none", False),
        (local(2026, 12, 24, 10), "US, 2026-12-24", True),
    ],
)
def test_holiday_sentence_only_on_a_local_holiday_that_has_hours(flow, now, holidays, mentions_holiday):
    sentence = hours_sentence(flow, "en", hours("Mon-Fri 08:00-18:00", holidays), now)
    assert sentence.startswith("We're closed today for the holiday.") is mentions_holiday
    assert sentence.endswith("Our hours are Monday through Friday, 8 AM to 6 PM, Eastern time.")


# ---- expected_call ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "window", "en", "es"),
    [
        (local(2026, 11, 23, 9), "morning", "today, in the morning", "hoy, por la mañana"),
        (local(2026, 11, 23, 13), "morning", "tomorrow, in the morning", "mañana, por la mañana"),
        (local(2026, 11, 23, 13), "afternoon", "today, in the afternoon", "hoy, por la tarde"),
        (local(2026, 11, 23, 9), "any", "today, at any time during our hours",
         "hoy, a cualquier hora de nuestro horario"),
        (local(2026, 11, 20, 19), "afternoon", "on Monday, in the afternoon", "el lunes, por la tarde"),
        (local(2026, 11, 21, 10), "evening", "on Monday, in the evening", "el lunes, después de las 5 de la tarde"),
        (local(2026, 11, 25, 19), "morning", "on Friday, in the morning", "el viernes, por la mañana"),
        # 23:00 Sunday in New York is Monday in UTC: Monday is still "tomorrow" for the caller.
        (local(2026, 11, 22, 23), "morning", "tomorrow, in the morning", "mañana, por la mañana"),
    ],
)
def test_expected_call(flow, now, window, en, es):
    weekdays = hours("Mon-Fri 08:00-18:00")
    assert expected_call(flow, "en", weekdays, now, window) == en
    assert expected_call(flow, "es", weekdays, now, window) == es


@pytest.mark.parametrize(
    ("now", "en", "es"),
    [
        (local(2026, 11, 27, 12, 59), "today, at any time during our hours",
         "hoy, a cualquier hora de nuestro horario"),
        (local(2026, 11, 24, 17, 58), "tomorrow, at any time during our hours",
         "mañana, a cualquier hora de nuestro horario"),
    ],
)
def test_expected_call_never_promises_a_window_the_clinic_is_never_open(flow, now, en, es):
    # Open until 17:00: nobody can call "in the evening", so the caller is not told so.
    early = hours("Mon-Fri 08:00-17:00")
    assert expected_call(flow, "en", early, now, "evening") == en
    assert expected_call(flow, "es", early, now, "evening") == es


@pytest.mark.parametrize(("lang", "text"), [("en", "as soon as we can"), ("es", "lo antes posible")])
def test_expected_call_when_closed(flow, lang, text):
    assert expected_call(flow, lang, hours("closed"), MONDAY_10AM, "morning") == text
