"""Phone numbers: caller IDs, keyed-in callback numbers, masking for logs and lists.

Everything goes through `phonenumbers` (Google's libphonenumber metadata) rather than
regular expressions: a withheld caller ID arrives as ``anonymous`` or as a junk number such
as ``+266696687``, and only real numbering-plan data tells a valid number from those.
"""

from __future__ import annotations

import functools
import re

import phonenumbers

WITHHELD_CALLER_IDS = frozenset(
    {"", "anonymous", "restricted", "unknown", "private", "unavailable", "blocked"}
)
SHORT_CODE = re.compile(r"^[0-9]{3}$")


def _parse(raw: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None


def _e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# Every webhook of a call carries the same From. Enough for the calls a worker serves at
# once, and no more: the cache holds callers' numbers.
@functools.lru_cache(maxsize=512)
def normalize_caller_id(raw: str | None) -> str | None:
    """E.164 for a caller ID we can call back (a valid North American number), else None."""
    if raw is None:
        return None
    raw = raw.strip()
    if raw.lower() in WITHHELD_CALLER_IDS or len(raw) > 32:
        return None
    number = _parse(raw, "US")
    if number is None or number.country_code != 1 or not phonenumbers.is_valid_number(number):
        return None
    return _e164(number)


def parse_keyed_us_number(digits: str | None) -> str | None:
    """E.164 for a 10-digit US number keyed in on the phone (a leading 1 is tolerated)."""
    if not digits or not digits.isdigit():
        return None
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if len(digits) != 10:
        return None
    number = _parse(digits, "US")
    if number is None or not phonenumbers.is_valid_number_for_region(number, "US"):
        return None
    return _e164(number)


def normalize_full_number(raw: str) -> str | None:
    """E.164 for a whole phone number (E.164 of any country, or a national US number); never
    a short code such as 988 or 123."""
    number = _parse(raw.strip(), "US")
    if number is None or not phonenumbers.is_valid_number(number):
        return None
    return _e164(number)


def normalize_dial_target(raw: str) -> str | None:
    """A number the line may dial: a whole number as E.164, or a three-digit service code such as 988."""
    raw = raw.strip()
    if SHORT_CODE.match(raw):
        return raw
    return normalize_full_number(raw)


def last_four(phone: str | None) -> str:
    digits = re.sub(r"\D", "", phone or "")
    return digits[-4:] if len(digits) >= 4 else ""


def mask(phone: str | None) -> str:
    """What logs and lists show of a number: its last four digits only."""
    four = last_four(phone)
    return f"•••-•••-{four}" if four else "(none)"


def spoken_digits(digits: str) -> str:
    """Digits read one at a time by text-to-speech ("1 2 3 4", not "one thousand ...")."""
    return " ".join(d for d in digits if d.isdigit())


def spoken_number(phone: str) -> str:
    """A US number read back in its familiar groups: 6 1 7, 5 5 5, 0 1 2 3."""
    digits = re.sub(r"\D", "", phone)[-10:]
    groups = (digits[:3], digits[3:6], digits[6:])
    return ", ".join(spoken_digits(g) for g in groups if g)


def display(phone: str | None) -> str:
    """A number as staff read it: (617) 555-0123."""
    if not phone:
        return ""
    number = _parse(phone, "US")
    if number is None:
        return phone
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
