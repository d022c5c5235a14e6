"""The .env `make run` writes: development settings the app starts with."""

from __future__ import annotations

from dotenv import dotenv_values

from voiceline.config import load_settings
from voiceline.devenv import write_dev_env


def test_the_development_env_names_every_number_and_secret(tmp_path):
    path = tmp_path / ".env"
    assert write_dev_env(path) is True
    values = dotenv_values(path)
    assert values["VOICELINE_ENV"] == "development"
    # Named in the file, so an operator sees what transfers ring: a fictional number.
    assert values["PATIENT_SERVICES_NUMBER"] == "+16175550100"
    settings = load_settings(values, tmp_path)
    assert settings["PATIENT_SERVICES_NUMBER"] == "+16175550100"
    # The generated secrets have the shape production requires too.
    production = load_settings({**values, "VOICELINE_ENV": "production", "DATABASE_URL": f"sqlite:///{tmp_path}/v.db"},
                               tmp_path)
    assert production["SECRET_KEY"] == values["SECRET_KEY"]
    assert production["TWILIO_AUTH_TOKEN"] == values["TWILIO_AUTH_TOKEN"]
    assert path.stat().st_mode & 0o777 == 0o600


def test_an_existing_env_is_left_as_it_is(tmp_path):
    path = tmp_path / ".env"
    path.write_text("VOICELINE_ENV=development\n")
    assert write_dev_env(path) is False
    assert path.read_text() == "VOICELINE_ENV=development\n"
