"""Settings, read from the environment (or a mapping in tests) and checked once at start-up.

Every setting an operator can give is listed in SETTINGS with its default; README's
configuration table is the same list. A bad value stops start-up with one line that names
the variable: a half-configured line that answers calls wrongly is worse than one that
does not start.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from voiceline.hours import BusinessHours, HoursError, parse_holidays
from voiceline.phones import normalize_dial_target, normalize_full_number

REPO_ROOT = Path(__file__).resolve().parent.parent

ENVIRONMENTS = ("development", "production")

# name -> default (None: no default; the setting is optional or required as checked below)
SETTINGS: dict[str, str | None] = {
    "VOICELINE_ENV": "production",
    "DATABASE_URL": None,
    "SECRET_KEY": None,
    "TWILIO_ACCOUNT_SID": None,
    "TWILIO_AUTH_TOKEN": None,
    # The patient services line, as issue 2 gives it. `make run`'s .env names a fictional
    # 555-01xx number instead, so a development line rings nobody's phone.
    "PATIENT_SERVICES_NUMBER": "+18885668774",
    "PUBLIC_BASE_URL": None,
    "TRUSTED_PROXIES": "0",
    "BUSINESS_HOURS": "Mon-Fri 08:00-18:00",
    "HOLIDAYS": "US",
    "CLINIC_TIMEZONE": "America/New_York",
    "CRISIS_LINE_NUMBER": "988",
    "CRISIS_LINE_FALLBACK_NUMBER": "+18002738255",
    "DIAL_TIMEOUT_SECONDS": "25",
    "RECORDING_MAX_SECONDS": "120",
    "PROMPTS_DIR": None,
    "CALLBACK_SLA_HOURS": "24",
    "CLAIM_TIMEOUT_MINUTES": "30",
    "MAX_ATTEMPTS": "3",
    "RETRY_AFTER_MINUTES": "60",
    "SESSION_IDLE_MINUTES": "30",
    "RETENTION_DAYS": None,
    "DB_STATEMENT_TIMEOUT_MS": "5000",
    "LOG_LEVEL": "INFO",
}


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


# RETENTION_DAYS bounds: a month at least, so a slip of the keyboard cannot erase last
# week's requests; ten years at most.
RETENTION_DAYS_RANGE = (30, 3650)

# Whole-number settings: name -> (lowest, highest) allowed. README's configuration table
# gives the same ranges (tests/test_config.py checks).
INT_RANGES: dict[str, tuple[int, int]] = {
    "TRUSTED_PROXIES": (0, 5),
    "DIAL_TIMEOUT_SECONDS": (5, 60),
    "RECORDING_MAX_SECONDS": (10, 600),
    "CALLBACK_SLA_HOURS": (1, 24 * 30),
    "CLAIM_TIMEOUT_MINUTES": (1, 24 * 60),
    "MAX_ATTEMPTS": (1, 20),
    "RETRY_AFTER_MINUTES": (0, 24 * 60),
    "SESSION_IDLE_MINUTES": (1, 24 * 60),
    "RETENTION_DAYS": RETENTION_DAYS_RANGE,
    "DB_STATEMENT_TIMEOUT_MS": (0, 600_000),
}


def _retention_days(source: Mapping[str, Any]) -> int | None:
    """Days after a request closes (or a call without one ends) before `voiceline retention
    purge` erases its health information; None (unset, or "off"): nothing is erased."""
    raw = str(source.get("RETENTION_DAYS") or "").strip()
    if raw.lower() in ("", "off"):
        return None
    return _int(source, "RETENTION_DAYS")


def _int(source: Mapping[str, Any], name: str) -> int:
    low, high = INT_RANGES[name]
    raw = str(source.get(name) or "").strip() or SETTINGS[name]  # empty or blank: the default
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ConfigError(f"{name}: expected a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}: must be between {low} and {high}, got {value}")
    return value


# Outside development: SECRET_KEY signs staff sessions and keys the sign-in throttle's HMAC, so
# it must be long enough not to be guessed; Twilio's auth tokens are 32 lowercase hex digits,
# and a token that is not one can never check a real signature (every call would get 403).
SECRET_KEY_MIN_LENGTH = 32
TWILIO_AUTH_TOKEN_FORMAT = re.compile(r"[0-9a-f]{32}")
TWILIO_ACCOUNT_SID_FORMAT = re.compile(r"AC[0-9a-f]{32}")


def _strong_secret(name: str, value: str) -> str:
    """A production secret that is what it should be; the message never repeats the value."""
    if name == "SECRET_KEY" and len(value) < SECRET_KEY_MIN_LENGTH:
        raise ConfigError(f"SECRET_KEY: too short (at least {SECRET_KEY_MIN_LENGTH} characters, got {len(value)}): "
                          "generate one with python3 -c 'import secrets; print(secrets.token_hex(32))'")
    if name == "TWILIO_AUTH_TOKEN" and not TWILIO_AUTH_TOKEN_FORMAT.fullmatch(value):
        raise ConfigError(f"TWILIO_AUTH_TOKEN: expected 32 lowercase hex characters (the auth token in "
                          f"Twilio's console), got {len(value)} characters that are not one")
    return value


def _account_sid(source: Mapping[str, Any]) -> str | None:
    raw = (source.get("TWILIO_ACCOUNT_SID") or "").strip()
    if raw and not TWILIO_ACCOUNT_SID_FORMAT.fullmatch(raw):
        raise ConfigError(f"TWILIO_ACCOUNT_SID: expected AC followed by 32 lowercase hex digits, got {raw!r}")
    return raw or None


def _patient_services_number(source: Mapping[str, Any]) -> str:
    """What transfers (and the fallback TwiML) dial: a whole number, never a short code such as 123."""
    raw = (source.get("PATIENT_SERVICES_NUMBER") or "").strip() or SETTINGS["PATIENT_SERVICES_NUMBER"]
    return _full_number("PATIENT_SERVICES_NUMBER", raw)


def _crisis_line_number(source: Mapping[str, Any]) -> str:
    """The crisis key's dial: 988 (a three-digit service code is allowed here only) or a whole number."""
    raw = (source.get("CRISIS_LINE_NUMBER") or SETTINGS["CRISIS_LINE_NUMBER"]).strip()
    number = normalize_dial_target(raw)
    if number is None:
        raise ConfigError(f"CRISIS_LINE_NUMBER: expected 988 or a phone number such as +18002738255, got {raw!r}")
    return number


def _crisis_line_fallback_number(source: Mapping[str, Any]) -> str | None:
    raw = (source.get("CRISIS_LINE_FALLBACK_NUMBER") or SETTINGS["CRISIS_LINE_FALLBACK_NUMBER"]).strip()
    if raw.lower() == "none":
        return None
    return _full_number("CRISIS_LINE_FALLBACK_NUMBER", raw)


def _full_number(name: str, raw: str) -> str:
    number = normalize_full_number(raw)
    if number is None:
        raise ConfigError(f"{name}: expected a whole phone number (E.164 such as +16175550100, or a US "
                          f"number such as (617) 555-0100), got {raw!r}")
    return number


# What DATABASE_URL may name: backend -> the drivers installed for it (None: the default).
SUPPORTED_DATABASES = {"postgresql": ("psycopg",), "sqlite": (None, "pysqlite")}


def database_url(raw: str | None, instance_path: Path) -> str:
    """Normalise DATABASE_URL; Heroku-style ``postgres://`` URLs get the psycopg 3 driver.

    A URL this app cannot use is a ConfigError naming its scheme (never the URL: it may
    carry a password), not a traceback from deep inside SQLAlchemy at the first request.
    """
    if not raw:
        return f"sqlite:///{instance_path / 'voiceline.db'}"
    for prefix in ("postgres://", "postgresql://"):
        if raw.startswith(prefix):
            raw = "postgresql+psycopg://" + raw[len(prefix):]
            break
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ConfigError("DATABASE_URL: not a database URL (expected postgresql://user@host/name "
                          "or sqlite:///path)") from None
    backend, _, driver = url.drivername.partition("+")
    if backend not in SUPPORTED_DATABASES:
        raise ConfigError(f"DATABASE_URL: {backend}:// is not supported: use PostgreSQL (postgresql://...) "
                          "or SQLite (sqlite:///path)")
    if (driver or None) not in SUPPORTED_DATABASES[backend]:
        raise ConfigError(f"DATABASE_URL: the {driver} driver is not installed: write {backend}:// "
                          f"(Voiceline uses {SUPPORTED_DATABASES[backend][0] or 'the standard driver'})")
    return raw


def load_settings(source: Mapping[str, Any], instance_path: Path) -> dict[str, Any]:
    """Turn raw settings into Flask config values, or raise ConfigError naming the variable."""
    env = (source.get("VOICELINE_ENV") or SETTINGS["VOICELINE_ENV"]).strip().lower()
    if env not in ENVIRONMENTS:
        raise ConfigError(f"VOICELINE_ENV: must be one of {', '.join(ENVIRONMENTS)}, got {env!r}")
    development = env == "development"

    def secret(name: str) -> str:
        value = (source.get(name) or "").strip()
        if value:
            return value if development else _strong_secret(name, value)
        if development:
            # Validation stays on in development: a generated token still has to sign requests.
            return secrets.token_hex(16)
        raise ConfigError(f"{name} is not set (required outside development)")

    tz_name = (source.get("CLINIC_TIMEZONE") or SETTINGS["CLINIC_TIMEZONE"]).strip()
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # "America" is a folder of zones: OSError
        raise ConfigError(f"CLINIC_TIMEZONE: unknown time zone {source.get('CLINIC_TIMEZONE')!r}") from None
    if "/" not in tz_name or tz_name.startswith("Etc/"):
        # EST, UTC, Etc/GMT+5: a fixed offset or an old alias. EST has no daylight saving time,
        # so from March to November the line would open and close an hour off.
        raise ConfigError(f"CLINIC_TIMEZONE: {tz_name!r} is not a place's time zone; use one such as "
                          "America/New_York or America/Phoenix (it follows the place's daylight saving time)")

    try:
        holiday_rule = parse_holidays(source.get("HOLIDAYS") or SETTINGS["HOLIDAYS"])
    except HoursError as exc:
        raise ConfigError(f"HOLIDAYS: {exc}") from None
    try:
        hours = BusinessHours.parse(
            source.get("BUSINESS_HOURS") or SETTINGS["BUSINESS_HOURS"], tz, holiday_rule
        )
    except HoursError as exc:
        raise ConfigError(f"BUSINESS_HOURS: {exc}") from None

    public_base = (source.get("PUBLIC_BASE_URL") or "").strip().rstrip("/") or None
    if public_base and (
        not public_base.startswith(("https://", "http://")) or "/" in public_base.split("://", 1)[1]
    ):
        raise ConfigError(
            f"PUBLIC_BASE_URL: expected an origin such as https://voice.example.org, got {public_base!r}"
        )

    prompts_dir = Path(source.get("PROMPTS_DIR") or REPO_ROOT / "prompts")

    log_level = (source.get("LOG_LEVEL") or SETTINGS["LOG_LEVEL"]).strip().upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"LOG_LEVEL: expected DEBUG, INFO, WARNING or ERROR, got {log_level!r}")

    statement_timeout = _int(source, "DB_STATEMENT_TIMEOUT_MS")
    secret_key, auth_token = secret("SECRET_KEY"), secret("TWILIO_AUTH_TOKEN")
    raw_url = (source.get("DATABASE_URL") or "").strip()
    if not raw_url and not development:
        # The SQLite default is one file on one machine: a second host would keep its own calls.
        raise ConfigError("DATABASE_URL is not set (required outside development; PostgreSQL, "
                          "or sqlite:///path for a single host)")
    url = database_url(raw_url, instance_path)
    account_sid = _account_sid(source)
    retention_days = _retention_days(source)
    if retention_days is not None and account_sid is None:
        raise ConfigError("TWILIO_ACCOUNT_SID is not set (required when RETENTION_DAYS is set: the purge "
                          "deletes voice messages through Twilio's REST API)")

    return {
        "VOICELINE_ENV": env,
        "DEVELOPMENT": development,
        "SECRET_KEY": secret_key,
        "TWILIO_AUTH_TOKEN": auth_token,
        "TWILIO_ACCOUNT_SID": account_sid,
        "SQLALCHEMY_DATABASE_URI": url,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(url, statement_timeout),
        "PATIENT_SERVICES_NUMBER": _patient_services_number(source),
        "CRISIS_LINE_NUMBER": _crisis_line_number(source),
        "CRISIS_LINE_FALLBACK_NUMBER": _crisis_line_fallback_number(source),
        "PUBLIC_BASE_URL": public_base,
        "TRUSTED_PROXIES": _int(source, "TRUSTED_PROXIES"),
        "BUSINESS_HOURS": hours,
        "CLINIC_TIMEZONE": tz,
        "DIAL_TIMEOUT_SECONDS": _int(source, "DIAL_TIMEOUT_SECONDS"),
        "RECORDING_MAX_SECONDS": _int(source, "RECORDING_MAX_SECONDS"),
        "PROMPTS_DIR": prompts_dir,
        "CALLBACK_SLA_HOURS": _int(source, "CALLBACK_SLA_HOURS"),
        "CLAIM_TIMEOUT_MINUTES": _int(source, "CLAIM_TIMEOUT_MINUTES"),
        "MAX_ATTEMPTS": _int(source, "MAX_ATTEMPTS"),
        "RETRY_AFTER_MINUTES": _int(source, "RETRY_AFTER_MINUTES"),
        "SESSION_IDLE_MINUTES": _int(source, "SESSION_IDLE_MINUTES"),
        "RETENTION_DAYS": retention_days,
        "LOG_LEVEL": log_level,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": not development,
        "PERMANENT_SESSION_LIFETIME": dt.timedelta(minutes=_int(source, "SESSION_IDLE_MINUTES")),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": not development,
    }


def engine_options(url: str, statement_timeout_ms: int) -> dict[str, Any]:
    """Engine settings that keep a webhook from hanging on a database that is not answering.

    Twilio gives up after 15 s; a connect or statement that takes longer than a few seconds
    must fail fast so the caller gets the fallback TwiML instead of "an application error".
    """
    # hide_parameters: a database error's message would otherwise carry its statement's
    # values (phone numbers, answers) into the logs.
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 5}, "hide_parameters": True}
    # No pool_pre_ping: it waits for ever on a server that stops answering. database.py
    # pings each pooled connection on checkout with a deadline instead.
    options: dict[str, Any] = {
        "hide_parameters": True,
        "pool_timeout": 3,
        "pool_recycle": 300,
        "connect_args": {"connect_timeout": 3},
    }
    if url.startswith("postgresql") and statement_timeout_ms:
        options["connect_args"]["options"] = f"-c statement_timeout={statement_timeout_ms}"
    return options
