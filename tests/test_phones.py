"""Phone numbers: caller IDs, keyed-in numbers, dial targets, and how numbers are shown."""

from __future__ import annotations

import pytest

from voiceline.phones import (
    display,
    last_four,
    mask,
    normalize_caller_id,
    normalize_dial_target,
    normalize_full_number,
    parse_keyed_us_number,
    spoken_digits,
    spoken_number,
)


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+16175550123", "+16175550123"),
        ("  +16175550123  ", "+16175550123"),
        ("+1 (617) 555-0123", "+16175550123"),
        ("1-617-555-0123", "+16175550123"),
        ("6175550123", "+16175550123"),
        ("+12125550100", "+12125550100"),
        ("+18885668774", "+18885668774"),  # toll-free
        ("+14165550123", "+14165550123"),  # Canada shares +1
    ],
)
def test_normalize_caller_id_accepts_north_american_numbers(raw, e164):
    assert normalize_caller_id(raw) == e164


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "   ",
        "anonymous",
        "Anonymous",
        "restricted",
        "RESTRICTED",
        "unknown",
        "private",
        "unavailable",
        "blocked",
        "+266696687",  # how some carriers present a withheld number
        "+7378742833",  # Twilio's stand-in for "anonymous"
        "junk",
        "not a number",
        "+1617555012",  # one digit short
        "+161755501234",  # one digit long
        "+10175550123",  # area codes never start with 0
        "+11175550123",  # ... or 1
        "+442071838750",  # valid, but not a number the line calls back
        "+16175550123" * 3,
        "6" * 40,
    ],
)
def test_normalize_caller_id_refuses_what_cannot_be_called_back(raw):
    assert normalize_caller_id(raw) is None


def test_normalize_caller_id_refuses_very_long_input_even_if_it_would_parse():
    padded = "+1" + " " * 30 + "6175550123"
    assert len(padded) > 32
    assert normalize_caller_id(" ".join(padded.split())) == "+16175550123"
    assert normalize_caller_id(padded) is None


@pytest.mark.parametrize(
    ("digits", "e164"),
    [
        ("6175550123", "+16175550123"),
        ("16175550123", "+16175550123"),  # a leading 1 is tolerated
        ("2125550100", "+12125550100"),
        ("8885668774", "+18885668774"),
    ],
)
def test_parse_keyed_us_number_valid(digits, e164):
    assert parse_keyed_us_number(digits) == e164


@pytest.mark.parametrize(
    "digits",
    [
        None,
        "",
        "617555012",  # 9 digits
        "617555012345",  # 12 digits
        "26175550123",  # 11 digits not starting with 1
        "116175550123",
        "617555O123",  # a letter O
        "abcdefghij",
        "617-555-0123",
        "+16175550123",
        "6175550123#",
        "*6175550123",
        " 6175550123",
        "0175550123",  # area code 0xx
        "1175550123",  # area code 1xx
        "10175550123",
        "6170550123",  # exchange 0xx
    ],
)
def test_parse_keyed_us_number_invalid(digits):
    assert parse_keyed_us_number(digits) is None


@pytest.mark.parametrize(
    ("raw", "target"),
    [
        ("988", "988"),
        (" 988 ", "988"),
        ("+18002738255", "+18002738255"),
        ("1-800-273-8255", "+18002738255"),
        ("+18885668774", "+18885668774"),
        ("+442071838750", "+442071838750"),
    ],
)
def test_normalize_dial_target_valid(raw, target):
    assert normalize_dial_target(raw) == target


@pytest.mark.parametrize("raw", ["", "  ", "98", "9888", "abc", "+266696687", "+10175550123"])
def test_normalize_dial_target_invalid(raw):
    assert normalize_dial_target(raw) is None


@pytest.mark.parametrize(("raw", "number"), [
    ("+18002738255", "+18002738255"), ("1-800-273-8255", "+18002738255"), ("(617) 555-0100", "+16175550100"),
    ("+442071838750", "+442071838750"), ("988", None), ("123", None), ("911", None), ("", None), ("+266696687", None),
])
def test_normalize_full_number_takes_no_short_code(raw, number):
    assert normalize_full_number(raw) == number


@pytest.mark.parametrize(
    ("phone", "four"),
    [("+16175550123", "0123"), ("(617) 555-0123", "0123"), ("1234", "1234"), ("123", ""), ("", ""),
     (None, ""), ("anonymous", "")],
)
def test_last_four(phone, four):
    assert last_four(phone) == four


@pytest.mark.parametrize(
    ("phone", "masked"),
    [("+16175550123", "•••-•••-0123"), ("(617) 555-0987", "•••-•••-0987"), (None, "(none)"), ("", "(none)"),
     ("123", "(none)")],
)
def test_mask_shows_only_the_last_four_digits(phone, masked):
    assert mask(phone) == masked
    assert "617" not in mask(phone)


@pytest.mark.parametrize(("digits", "spoken"), [("0123", "0 1 2 3"), ("12#3*", "1 2 3"), ("", ""), ("7", "7")])
def test_spoken_digits(digits, spoken):
    assert spoken_digits(digits) == spoken


@pytest.mark.parametrize("phone", ["+16175550123", "(617) 555-0123", "6175550123", "1-617-555-0123"])
def test_spoken_number_in_familiar_groups(phone):
    assert spoken_number(phone) == "6 1 7, 5 5 5, 0 1 2 3"


@pytest.mark.parametrize(
    ("phone", "shown"),
    [("+16175550123", "(617) 555-0123"), ("+18885668774", "(888) 566-8774"), ("junk", "junk"), ("", ""),
     (None, "")],
)
def test_display(phone, shown):
    assert display(phone) == shown
