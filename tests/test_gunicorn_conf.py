"""gunicorn.conf.py, the Procfile's web process: workers, the control socket, the access log."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from gunicorn.config import Config

from tests.conftest import PRODUCTION_SETTINGS

REPO = Path(__file__).resolve().parent.parent
CONF = REPO / "gunicorn.conf.py"
ISO_UTC = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def gunicorn_config(monkeypatch, **env: str) -> Config:
    """gunicorn.conf.py read as gunicorn reads it: run as a module, its known names applied."""
    for name in ("PORT", "WEB_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    cfg = Config()
    for name, value in runpy.run_path(str(CONF)).items():
        if name in cfg.settings:
            cfg.set(name, value)
    return cfg


@pytest.mark.parametrize(("env", "workers", "bind"), [
    ({}, 2, "0.0.0.0:5000"),
    ({"WEB_CONCURRENCY": "", "PORT": " "}, 2, "0.0.0.0:5000"),  # empty: the default
    ({"WEB_CONCURRENCY": "3", "PORT": "8080"}, 3, "0.0.0.0:8080"),
])
def test_workers_and_port_come_from_the_environment(monkeypatch, env, workers, bind):
    cfg = gunicorn_config(monkeypatch, **env)
    assert (cfg.workers, cfg.bind) == (workers, [bind])


@pytest.mark.parametrize(("name", "value"), [("WEB_CONCURRENCY", "0"), ("WEB_CONCURRENCY", "65"),
                                             ("PORT", "http"), ("PORT", "0")])
def test_a_setting_that_would_start_no_server_is_refused_in_one_line(monkeypatch, capsys, name, value):
    """WEB_CONCURRENCY=0 started a master with no workers: every request hung."""
    with pytest.raises(SystemExit) as exited:
        gunicorn_config(monkeypatch, **{name: value})
    assert exited.value.code == 4
    assert re.fullmatch(rf"voiceline: cannot start: {name}: expected a whole number from 1 to \d+, "
                        rf"got '{value}'\n", capsys.readouterr().err)


def test_gunicorn_itself_refuses_no_workers(tmp_path):
    """The real command line of the Procfile: it stops before loading the app."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), **PRODUCTION_SETTINGS,
           "DATABASE_URL": f"sqlite:///{tmp_path / 'v.db'}", "WEB_CONCURRENCY": "0"}
    run = subprocess.run([str(Path(sys.executable).with_name("gunicorn")), "--config", str(CONF),
                          "voiceline.wsgi:app"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert (run.returncode, run.stderr.splitlines()) == (
        4, ["voiceline: cannot start: WEB_CONCURRENCY: expected a whole number from 1 to 64, got '0'"])


def test_the_control_socket_is_off(monkeypatch):
    """gunicorn 25.1+ opens $HOME/.gunicorn/gunicorn.ctl, which a second gunicorn takes over."""
    if "control_socket_disable" not in Config().settings:
        pytest.skip("this gunicorn has no control socket (before 25.1)")
    assert gunicorn_config(monkeypatch).control_socket_disable is True


@pytest.fixture
def access_log(monkeypatch, caplog):
    """access(headers) -> the access log line gunicorn writes for a POST with those headers."""
    cfg = gunicorn_config(monkeypatch)
    logger = cfg.logger_class(cfg)

    def access(headers: list[tuple[str, str]]) -> str:
        environ = {"REQUEST_METHOD": "POST", "RAW_URI": "/voice/step/main_menu?lang=en", "SERVER_PROTOCOL": "HTTP/1.1",
                   "REMOTE_ADDR": "10.1.2.3"}
        logger.access(SimpleNamespace(status="200 OK", headers=[], sent=412), SimpleNamespace(headers=headers),
                      environ, dt.timedelta(milliseconds=7))
        [line] = [r.getMessage() for r in caplog.records if r.name == "gunicorn.access"]
        caplog.clear()
        return line

    yield access
    for name in ("gunicorn.access", "gunicorn.error"):
        logging.getLogger(name).handlers.clear()


def test_an_access_line_has_the_time_and_the_request_id(access_log):
    line = access_log([("X-REQUEST-ID", "1b4e28ba-2fa1-11d2-883f-0016cb6a1a00")])
    assert re.fullmatch(rf'{ISO_UTC} 10\.1\.2\.3 "POST /voice/step/main_menu\?lang=en HTTP/1\.1" 200 412 7ms '
                        r"request_id=1b4e28ba-2fa1-11d2-883f-0016cb6a1a00", line), line


@pytest.mark.parametrize(("header", "shown"), [
    (None, "-"),
    ("+16175550123-call-me-back", "•••0123-call-me-back"),  # the client's own header: no number in the log
    ("x" * 201, "-"),
    ("two words", "-"),
])
def test_an_access_lines_request_id_is_fit_for_a_log(access_log, header, shown):
    line = access_log([("X-REQUEST-ID", header)] if header else [])
    assert line.endswith(f" request_id={shown}") and "6175550123" not in line
