"""Settings: required secrets, one clear error per bad value, and normalised values."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import TEST_SECRET_KEY, base_config
from tests.phone import TEST_TOKEN
from voiceline import create_app
from voiceline.config import ConfigError, load_settings
from voiceline.hours import BusinessHours

SECRET = "s3cret-key-" + "x" * 21  # 32 characters, the shortest allowed
PRODUCTION = {"VOICELINE_ENV": "production", "SECRET_KEY": SECRET, "TWILIO_AUTH_TOKEN": TEST_TOKEN,
              "PATIENT_SERVICES_NUMBER": "+16175550100", "DATABASE_URL": "postgresql://db.example/voiceline"}


def load(tmp_path, **values):
    return load_settings({**PRODUCTION, **values}, tmp_path)


def load_without(tmp_path, name, **values):
    source = {**PRODUCTION, **values}
    del source[name]
    return load_settings(source, tmp_path)


# ---- secrets -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["TWILIO_AUTH_TOKEN", "SECRET_KEY"])
def test_production_requires_each_secret(tmp_path, name):
    with pytest.raises(ConfigError, match=f"^{name} is not set"):
        load_without(tmp_path, name)


@pytest.mark.parametrize("name", ["TWILIO_AUTH_TOKEN", "SECRET_KEY"])
@pytest.mark.parametrize("blank", ["", "   "])
def test_production_treats_a_blank_secret_as_missing(tmp_path, name, blank):
    with pytest.raises(ConfigError, match=f"^{name} is not set"):
        load(tmp_path, **{name: blank})


def test_production_is_the_default_environment(tmp_path):
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        load_settings({}, tmp_path)


def test_production_keeps_given_secrets(tmp_path):
    settings = load(tmp_path, SECRET_KEY=f"  {SECRET}  ")
    assert settings["SECRET_KEY"] == SECRET
    assert settings["TWILIO_AUTH_TOKEN"] == TEST_TOKEN
    assert (settings["VOICELINE_ENV"], settings["DEVELOPMENT"]) == ("production", False)


@pytest.mark.parametrize("env", ["development", " Development "])
def test_development_generates_missing_secrets(tmp_path, env):
    first = load_settings({"VOICELINE_ENV": env}, tmp_path)
    second = load_settings({"VOICELINE_ENV": env}, tmp_path)
    assert (first["VOICELINE_ENV"], first["DEVELOPMENT"]) == ("development", True)
    for name in ("SECRET_KEY", "TWILIO_AUTH_TOKEN"):
        assert len(first[name]) >= 32
        assert first[name] != second[name]
    assert first["SECRET_KEY"] != first["TWILIO_AUTH_TOKEN"]


def test_development_keeps_given_secrets(tmp_path):
    """Even weak ones: a developer's own .env, never a production host."""
    settings = load(tmp_path, VOICELINE_ENV="development", SECRET_KEY="x", TWILIO_AUTH_TOKEN="twilio-token")
    assert (settings["SECRET_KEY"], settings["TWILIO_AUTH_TOKEN"]) == ("x", "twilio-token")


def test_create_app_refuses_to_start_without_secret_key(tmp_path):
    config = base_config(f"sqlite:///{tmp_path / 'voiceline.db'}")
    assert create_app(config).config["SECRET_KEY"] == TEST_SECRET_KEY  # the same config starts
    del config["SECRET_KEY"]
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        create_app(config)


@pytest.mark.parametrize("blank", [None, "", "  "])
def test_the_patient_services_number_defaults_to_the_line_issue_2_names(tmp_path, blank):
    settings = (load(tmp_path, PATIENT_SERVICES_NUMBER=blank) if blank is not None
                else load_without(tmp_path, "PATIENT_SERVICES_NUMBER"))
    assert settings["PATIENT_SERVICES_NUMBER"] == "+18885668774"
    development = load_settings({"VOICELINE_ENV": "development"}, tmp_path)
    assert development["PATIENT_SERVICES_NUMBER"] == "+18885668774"


@pytest.mark.parametrize("name", ["PATIENT_SERVICES_NUMBER", "CRISIS_LINE_FALLBACK_NUMBER"])
@pytest.mark.parametrize("code", ["123", "988", "911", " 411 "])
def test_only_the_crisis_line_may_be_a_three_digit_code(tmp_path, name, code):
    with pytest.raises(ConfigError, match=f"^{name}: expected a whole phone number"):
        load(tmp_path, **{name: code})
    assert load(tmp_path, CRISIS_LINE_NUMBER=code)["CRISIS_LINE_NUMBER"] == code.strip()


@pytest.mark.parametrize("key", ["x", "s3cret-key", "x" * 31])
def test_production_refuses_a_short_secret_key(tmp_path, key):
    with pytest.raises(ConfigError, match=rf"^SECRET_KEY: too short \(at least 32 characters, got {len(key)}\)"):
        load(tmp_path, SECRET_KEY=key)
    assert load(tmp_path, SECRET_KEY="x" * 32)["SECRET_KEY"] == "x" * 32


@pytest.mark.parametrize("token", [
    "y",
    "twilio-token",
    "test-auth-token-0123456789abcdef",  # 32 characters, not hex
    "0123456789ABCDEF0123456789ABCDEF",  # Twilio's are lowercase: this one signs differently
    "0123456789abcdef0123456789abcde",
    "0123456789abcdef0123456789abcdef0",
])
def test_production_refuses_an_auth_token_that_is_not_twilios_shape(tmp_path, token):
    with pytest.raises(ConfigError, match=r"^TWILIO_AUTH_TOKEN: expected 32 lowercase hex characters") as caught:
        load(tmp_path, TWILIO_AUTH_TOKEN=token)
    assert token not in str(caught.value)  # a secret is never repeated, even a wrong one


@pytest.mark.parametrize("env", ["production", "development"])
@pytest.mark.parametrize("sid", ["AC123", "SK" + "0" * 32, "AC" + "g" * 32, "ac" + "0" * 32, "AC" + "0" * 33])
def test_a_malformed_account_sid_is_refused(tmp_path, env, sid):
    with pytest.raises(ConfigError, match=r"^TWILIO_ACCOUNT_SID: expected AC followed by 32 lowercase hex digits"):
        load(tmp_path, VOICELINE_ENV=env, TWILIO_ACCOUNT_SID=sid)


def test_an_account_sid_is_kept(tmp_path):
    assert load(tmp_path, TWILIO_ACCOUNT_SID=" AC" + "0123456789abcdef" * 2)["TWILIO_ACCOUNT_SID"] == \
        "AC" + "0123456789abcdef" * 2


@pytest.mark.parametrize("env", ["production", "development"])
def test_retention_needs_the_account_sid(tmp_path, env):
    """The purge deletes voice messages at Twilio: without the SID every run would fail there."""
    with pytest.raises(ConfigError, match=r"^TWILIO_ACCOUNT_SID is not set \(required when RETENTION_DAYS is set"):
        load(tmp_path, VOICELINE_ENV=env, RETENTION_DAYS="30")
    assert load(tmp_path, VOICELINE_ENV=env, RETENTION_DAYS="off")["RETENTION_DAYS"] is None
    assert load(tmp_path, VOICELINE_ENV=env, RETENTION_DAYS="30", TWILIO_ACCOUNT_SID="AC" + "0" * 32)[
        "RETENTION_DAYS"] == 30


def test_wsgi_refuses_a_weak_secret_key_in_one_line(tmp_path):
    """What gunicorn's master prints before forking any worker."""
    import os
    import subprocess
    import sys

    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), **PRODUCTION,
           "DATABASE_URL": f"sqlite:///{tmp_path / 'v.db'}", "SECRET_KEY": "x"}
    run = subprocess.run([sys.executable, "-c", "import voiceline.wsgi"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)
    assert (run.returncode, run.stderr.splitlines()) == (4, [
        "voiceline: cannot start: SECRET_KEY: too short (at least 32 characters, got 1): "
        "generate one with python3 -c 'import secrets; print(secrets.token_hex(32))'"])


# ---- malformed values ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("VOICELINE_ENV", "staging"),
        ("VOICELINE_ENV", "prod"),
        ("BUSINESS_HOURS", "Mon-Fri 9-5"),
        ("BUSINESS_HOURS", "Funday 08:00-18:00"),
        ("BUSINESS_HOURS", "Mon 18:00-08:00"),
        ("HOLIDAYS", "Xmas"),
        ("CLINIC_TIMEZONE", "Mars/Olympus"),
        ("CLINIC_TIMEZONE", "Eastern"),
        ("CLINIC_TIMEZONE", "America"),
        ("CLINIC_TIMEZONE", "../etc/passwd"),
        ("PATIENT_SERVICES_NUMBER", "12345"),
        ("PATIENT_SERVICES_NUMBER", "123"),
        ("PATIENT_SERVICES_NUMBER", "call us"),
        ("PATIENT_SERVICES_NUMBER", "+266696687"),
        ("CRISIS_LINE_NUMBER", "98"),
        ("CRISIS_LINE_FALLBACK_NUMBER", "junk"),
        ("PUBLIC_BASE_URL", "voice.example.org"),
        ("PUBLIC_BASE_URL", "https://voice.example.org/voice"),
        ("PUBLIC_BASE_URL", "ftp://voice.example.org"),
        ("LOG_LEVEL", "loud"),
        ("DIAL_TIMEOUT_SECONDS", "abc"),
        ("DIAL_TIMEOUT_SECONDS", "4"),
        ("DIAL_TIMEOUT_SECONDS", "61"),
        ("RECORDING_MAX_SECONDS", "9"),
        ("RECORDING_MAX_SECONDS", "601"),
        ("CALLBACK_SLA_HOURS", "0"),
        ("CLAIM_TIMEOUT_MINUTES", "-1"),
        ("MAX_ATTEMPTS", "2.5"),
        ("MAX_ATTEMPTS", "21"),
        ("RETRY_AFTER_MINUTES", "-1"),
        ("RETRY_AFTER_MINUTES", "1441"),
        ("RETRY_AFTER_MINUTES", "an hour"),
        ("SESSION_IDLE_MINUTES", "ten"),
        ("DB_STATEMENT_TIMEOUT_MS", "600001"),
    ],
)
def test_malformed_setting_names_the_variable(tmp_path, name, value):
    with pytest.raises(ConfigError, match=f"^{name}: "):
        load(tmp_path, **{name: value})


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DIAL_TIMEOUT_SECONDS", "abc", "DIAL_TIMEOUT_SECONDS: expected a whole number, got 'abc'"),
        ("DIAL_TIMEOUT_SECONDS", "61", "DIAL_TIMEOUT_SECONDS: must be between 5 and 60, got 61"),
        ("RETRY_AFTER_MINUTES", "1441", "RETRY_AFTER_MINUTES: must be between 0 and 1440, got 1441"),
        ("RETRY_AFTER_MINUTES", "soon", "RETRY_AFTER_MINUTES: expected a whole number, got 'soon'"),
        ("BUSINESS_HOURS", "Funday 08:00-18:00", "BUSINESS_HOURS: unknown day 'Funday'"),
        ("HOLIDAYS", "Xmas", "HOLIDAYS: expected US, none or dates like 2026-12-24, got 'Xmas'"),
        ("CLINIC_TIMEZONE", "Mars/Olympus", "CLINIC_TIMEZONE: unknown time zone 'Mars/Olympus'"),
        ("CLINIC_TIMEZONE", "America", "CLINIC_TIMEZONE: unknown time zone 'America'"),  # a folder of zones
        ("DATABASE_URL", "not-a-url", "DATABASE_URL: not a database URL (expected postgresql://"),
        ("DATABASE_URL", "postgresql://clinic:pw@db.example:abc/voiceline", "DATABASE_URL: not a database URL"),
        ("DATABASE_URL", "mysql://clinic:pw@db.example/voiceline", "DATABASE_URL: mysql:// is not supported"),
        ("DATABASE_URL", "postgresql+psycopg2://db.example/voiceline",
         "DATABASE_URL: the psycopg2 driver is not installed: write postgresql://"),
    ],
)
def test_malformed_setting_messages(tmp_path, name, value, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        load(tmp_path, **{name: value})
    assert ":pw@" not in str(caught.value)  # a URL's password is never repeated


@pytest.mark.parametrize(
    ("name", "value", "parsed"),
    [
        ("DIAL_TIMEOUT_SECONDS", "5", 5),
        ("DIAL_TIMEOUT_SECONDS", "60", 60),
        ("DIAL_TIMEOUT_SECONDS", " 30 ", 30),
        ("DIAL_TIMEOUT_SECONDS", "  ", 25),  # blank: the default
        ("MAX_ATTEMPTS", "20", 20),
        ("RETRY_AFTER_MINUTES", "0", 0),  # no delay
        ("RETRY_AFTER_MINUTES", " 1440 ", 1440),
        ("PATIENT_SERVICES_NUMBER", "1-888-566-8774", "+18885668774"),
        ("CRISIS_LINE_NUMBER", "988", "988"),
        ("CRISIS_LINE_FALLBACK_NUMBER", "none", None),
        ("CRISIS_LINE_FALLBACK_NUMBER", "(800) 273-8255", "+18002738255"),
        ("PUBLIC_BASE_URL", "https://voice.example.org/", "https://voice.example.org"),
        ("PUBLIC_BASE_URL", "http://localhost:5000", "http://localhost:5000"),
        ("PUBLIC_BASE_URL", "", None),
        ("LOG_LEVEL", "debug", "DEBUG"),
    ],
)
def test_accepted_values_are_normalised(tmp_path, name, value, parsed):
    assert load(tmp_path, **{name: value})[name] == parsed


def test_defaults(tmp_path):
    settings = load(tmp_path)
    assert settings["CRISIS_LINE_NUMBER"] == "988"
    assert settings["CRISIS_LINE_FALLBACK_NUMBER"] == "+18002738255"
    assert settings["CLINIC_TIMEZONE"] == ZoneInfo("America/New_York")
    assert settings["PUBLIC_BASE_URL"] is None
    assert settings["TWILIO_ACCOUNT_SID"] is None
    assert settings["LOG_LEVEL"] == "INFO"
    assert (settings["DIAL_TIMEOUT_SECONDS"], settings["RECORDING_MAX_SECONDS"], settings["MAX_ATTEMPTS"]) == (25, 120, 3)
    assert settings["RETRY_AFTER_MINUTES"] == 60
    hours = settings["BUSINESS_HOURS"]
    assert isinstance(hours, BusinessHours)
    assert (hours.mode, hours.source, hours.holidays.federal) == ("weekly", "Mon-Fri 08:00-18:00", True)


def test_business_hours_use_the_clinic_time_zone_and_holidays(tmp_path):
    settings = load(tmp_path, BUSINESS_HOURS="Sat 09:00-13:00", CLINIC_TIMEZONE="America/Chicago",
                    HOLIDAYS="none, 2026-12-24")
    hours = settings["BUSINESS_HOURS"]
    assert hours.tz == ZoneInfo("America/Chicago")
    assert not hours.holidays.federal
    assert set(hours.holidays.extra) == {dt.date(2026, 12, 24)}


# ---- database ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "url"),
    [
        ("postgres://u:p@db.example.org:5432/voiceline", "postgresql+psycopg://u:p@db.example.org:5432/voiceline"),
        ("postgresql://u:p@db.example.org/voiceline", "postgresql+psycopg://u:p@db.example.org/voiceline"),
        ("postgresql+psycopg://u:p@db.example.org/voiceline", "postgresql+psycopg://u:p@db.example.org/voiceline"),
        ("sqlite:////srv/voiceline/data.db", "sqlite:////srv/voiceline/data.db"),
    ],
)
def test_database_url_is_normalised(tmp_path, raw, url):
    assert load(tmp_path, DATABASE_URL=raw)["SQLALCHEMY_DATABASE_URI"] == url


@pytest.mark.parametrize("raw", [None, ""])
def test_default_database_in_development_is_sqlite_in_the_instance_path(tmp_path, raw):
    settings = load(tmp_path, VOICELINE_ENV="development", DATABASE_URL=raw)
    assert settings["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'voiceline.db'}"
    assert settings["SQLALCHEMY_ENGINE_OPTIONS"] == {"connect_args": {"timeout": 5}, "hide_parameters": True}


@pytest.mark.parametrize("raw", [None, "", "  "])
def test_production_never_falls_back_to_a_local_file(tmp_path, raw):
    # One SQLite file per host would split the calls of a line served by several hosts.
    with pytest.raises(ConfigError, match=r"^DATABASE_URL is not set \(required outside development"):
        load(tmp_path, DATABASE_URL=raw)
    explicit = load(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'one-host.db'}")
    assert explicit["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'one-host.db'}"


def test_postgres_gets_a_statement_timeout(tmp_path):
    settings = load(tmp_path, DATABASE_URL="postgres://db.example.org/voiceline", DB_STATEMENT_TIMEOUT_MS="2500")
    options = settings["SQLALCHEMY_ENGINE_OPTIONS"]
    assert "pool_pre_ping" not in options  # database.py pings on checkout, with a deadline
    assert options["hide_parameters"] is True  # no caller data in database error messages
    assert options["connect_args"] == {"connect_timeout": 3, "options": "-c statement_timeout=2500"}


def test_a_zero_statement_timeout_sets_none(tmp_path):
    settings = load(tmp_path, DATABASE_URL="postgres://db.example.org/voiceline", DB_STATEMENT_TIMEOUT_MS="0")
    assert settings["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"] == {"connect_timeout": 3}


# ---- cookies -------------------------------------------------------------------------------


@pytest.mark.parametrize(("env", "secure"), [("production", True), ("development", False)])
def test_cookies_are_secure_outside_development(tmp_path, env, secure):
    settings = load(tmp_path, VOICELINE_ENV=env)
    assert settings["SESSION_COOKIE_SECURE"] is secure
    assert settings["REMEMBER_COOKIE_SECURE"] is secure
    for cookie in ("SESSION", "REMEMBER"):
        assert settings[f"{cookie}_COOKIE_HTTPONLY"] is True
        assert settings[f"{cookie}_COOKIE_SAMESITE"] == "Lax"


def test_a_sqlite_app_never_loads_the_postgresql_driver():
    """psycopg (about 9 MB per worker) is imported only where PostgreSQL is used."""
    import subprocess
    import sys

    script = (
        "import sys, tempfile\n"
        "from tests.phone import TEST_TOKEN, Phone\n"
        "from voiceline import create_app, init_migrations\n"
        "from flask_migrate import upgrade\n"
        "app = create_app({'VOICELINE_ENV': 'production', 'SECRET_KEY': 'x' * 32, 'TWILIO_AUTH_TOKEN': TEST_TOKEN,\n"
        "                  'DATABASE_URL': f'sqlite:///{tempfile.mkdtemp()}/v.db', 'BUSINESS_HOURS': '24/7',\n"
        "                  'PATIENT_SERVICES_NUMBER': '+16175550100'})\n"
        "init_migrations(app)\n"
        "with app.app_context():\n"
        "    upgrade()\n"
        "phone = Phone(app)\n"
        "phone.call()\n"
        "phone.press('1')\n"
        "assert phone.doc.find('Gather') is not None\n"
        "assert 'psycopg' not in sys.modules, 'psycopg was imported'\n"
        "print('ok')\n"
    )
    repo = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=repo)
    assert result.stdout.strip().endswith("ok"), result.stderr[-2000:]


# ---- testing mode --------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "1", "false", "true"])
def test_testing_mode_is_never_read_from_the_environment(tmp_path, monkeypatch, value):
    """TESTING=0 once read as true (bool("0")); Flask's testing mode is for tests' own mappings."""
    monkeypatch.chdir(tmp_path)  # no .env to find
    for name, setting in {**PRODUCTION, "DATABASE_URL": f"sqlite:///{tmp_path / 'v.db'}", "TESTING": value}.items():
        monkeypatch.setenv(name, setting)
    assert create_app().config["TESTING"] is False
    assert "TESTING" not in load_settings({**PRODUCTION, "TESTING": value}, tmp_path)


def test_a_tests_mapping_turns_on_testing_mode(tmp_path):
    config = base_config(f"sqlite:///{tmp_path / 'voiceline.db'}")
    assert create_app(config).config["TESTING"] is True
    assert create_app({**config, "TESTING": "1"}).config["TESTING"] is False  # a string is the environment's


# ---- README ---------------------------------------------------------------------------------


def readme_settings() -> dict[str, str]:
    """Configuration's tables in README.md: variable -> its row."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    return {m.group(1): m.group(0) for m in re.finditer(r"^\| `([A-Z_]+)` \|.*$", section, re.MULTILINE)}


def test_readme_lists_every_setting_with_its_range(monkeypatch):
    import runpy

    from voiceline.config import INT_RANGES, SETTINGS

    monkeypatch.delenv("PORT", raising=False)
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    rows = readme_settings()
    gunicorn = runpy.run_path(str(Path(__file__).resolve().parent.parent / "gunicorn.conf.py"))
    assert set(rows) == set(SETTINGS) | {"PORT", "WEB_CONCURRENCY"}
    ranges = {**INT_RANGES, "PORT": gunicorn["PORT_RANGE"], "WEB_CONCURRENCY": gunicorn["WEB_CONCURRENCY_RANGE"]}
    for name, (low, high) in ranges.items():
        assert f"| {low} to {high}" in rows[name] or f"; {low} to {high}" in rows[name], rows[name]
    assert all(f"`{level}`" in rows["LOG_LEVEL"] for level in ("DEBUG", "INFO", "WARNING", "ERROR"))


@pytest.mark.parametrize("zone", ["EST", "UTC", "Etc/GMT+5", "EST5EDT"])
def test_a_time_zone_without_daylight_saving_rules_of_a_place_is_refused(tmp_path, zone):
    """EST is a fixed offset: from March to November the line would open an hour off."""
    with pytest.raises(ConfigError, match=f"CLINIC_TIMEZONE: '{re.escape(zone)}' is not a place's time zone"):
        load(tmp_path, CLINIC_TIMEZONE=zone)
