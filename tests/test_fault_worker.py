"""A gunicorn worker killed in the middle of a webhook: Twilio's retry of the same request
completes, and what the step stores is stored exactly once.

The real app runs under gunicorn (the Procfile's web process) on the PostgreSQL test
database. The webhook is made to stop deterministically inside the worker, in the middle of
its transaction: another connection holds a lock on call_events that the step's INSERT
waits for. The test sees the INSERT waiting in pg_stat_activity, SIGKILLs the worker,
releases the lock and sends the identical signed request again, as Twilio's retry would
reach the worker gunicorn started in its place.

PostgreSQL only: the sqlite variant of `database_url` is skipped; with TEST_DATABASE_URL set
(CI) an unreachable server fails the run in the fixture.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
import sqlalchemy as sa

from tests.conftest import PRODUCTION_SETTINGS
from tests.phone import check_invariants, new_sid, query, sign

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
CALLER = "+16175550123"
CONFIRMATION = "call you back at the number ending in 0 1 2 3"


# ---- helpers ---------------------------------------------------------------------------------
def poll(predicate, *, within: float, what: str, pause: float = 0.05):
    """The predicate's first truthy value, checked until `within` seconds have passed."""
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {within:.0f} s waiting for {what}")
        time.sleep(pause)  # between checks of a poll, not a timing assumption


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Answer:
    status: int
    content_type: str
    body: str

    def twiml(self) -> ET.Element:
        assert self.status == 200, self.body
        assert self.content_type.startswith("text/xml"), self.content_type
        root = ET.fromstring(self.body)
        assert root.tag == "Response"
        check_invariants(root)
        return root


def post(url: str, data: dict[str, str], *, timeout: float = 30) -> Answer:
    """A signed POST as Twilio makes it, over a real socket."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("POST", parts.path + (f"?{parts.query}" if parts.query else ""), urlencode(data), {
            "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sign(url, data)})
        response = connection.getresponse()
        return Answer(response.status, response.getheader("Content-Type", ""), response.read().decode())
    finally:
        connection.close()


def get_status(url: str) -> int | None:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        connection.request("GET", parts.path)
        response = connection.getresponse()
        response.read()
        return response.status
    except OSError:
        return None
    finally:
        connection.close()


def children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (gunicorn's workers, for its master)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


class Gunicorn:
    def __init__(self, database_url: str, logs: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PORT": str(self.port), "WEB_CONCURRENCY": "1", **PRODUCTION_SETTINGS,
               "DATABASE_URL": database_url,
               "LOG_LEVEL": "WARNING", "PUBLIC_BASE_URL": "",
               # Closed, so "patient services" goes straight to callback capture at any hour.
               "BUSINESS_HOURS": "closed",
               # The test, not the statement timeout, decides how long the blocked INSERT waits.
               "DB_STATEMENT_TIMEOUT_MS": "60000"}
        self.log_path = logs
        self.log = open(logs, "wb")  # noqa: SIM115 (closed in stop)
        # The config's bind, on loopback only (gunicorn.conf.py also turns off gunicorn 25.1+'s
        # control socket, one fixed path per user that parallel test runs would share).
        command = [str(Path(sys.executable).parent / "gunicorn"), "--config", "gunicorn.conf.py",
                   "--bind", f"127.0.0.1:{self.port}"]
        self.process = subprocess.Popen([*command, "voiceline.wsgi:app"], cwd=REPO, env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT)

    def wait_ready(self, within: float = 30) -> None:
        def ready():
            if self.process.poll() is not None:
                pytest.fail(f"gunicorn exited ({self.process.returncode}):\n{self.output()}")
            return get_status(self.base + "/healthz") == 200
        poll(ready, within=within, what="gunicorn's /healthz to answer 200")

    def worker(self) -> int:
        def only_worker():
            pids = children(self.process.pid)
            return pids[0] if len(pids) == 1 else None
        return poll(only_worker, within=10, what="exactly one gunicorn worker")

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()


@pytest.fixture
def pg_url(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only (gunicorn on the PostgreSQL test database)")
    return database_url


@pytest.fixture
def server(pg_url, make_app, tmp_path):
    make_app()  # only for its teardown: empties the tables after the test
    running = Gunicorn(pg_url, tmp_path / "gunicorn.log")
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


@pytest.fixture
def database(pg_url):
    engine = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


class Call:
    """One caller, step by step, over HTTP."""

    def __init__(self, server: Gunicorn):
        self.server = server
        self.sid = new_sid()
        self.doc: ET.Element | None = None

    def fields(self, **extra) -> dict[str, str]:
        return {"CallSid": self.sid, "AccountSid": "AC" + "1" * 32, "From": CALLER, "To": "+18885550100",
                "CallStatus": "in-progress", "Direction": "inbound", **extra}

    def call(self):
        self.doc = post(self.server.base + "/voice/incoming", self.fields(CallStatus="ringing")).twiml()

    def next_press(self, digits: str) -> tuple[str, dict[str, str]]:
        """The request pressing `digits` at the current <Gather> would send."""
        gather = self.doc.find("Gather")
        assert gather is not None, ET.tostring(self.doc, encoding="unicode")
        return gather.get("action"), self.fields(Digits=digits)

    def press(self, *keys: str):
        for key in keys:
            self.doc = post(*self.next_press(key)).twiml()

    def text(self) -> str:
        return " ".join(say.text or "" for say in self.doc.iter("Say"))


class HeldLock:
    """LOCK TABLE in an open transaction on a connection of its own, until released."""

    def __init__(self, engine: sa.Engine, table: str, mode: str):
        self.connection = engine.connect()
        self.connection.exec_driver_sql("BEGIN")
        self.connection.exec_driver_sql(f"LOCK TABLE {table} IN {mode} MODE")

    def release(self):
        if self.connection is not None:
            self.connection.exec_driver_sql("ROLLBACK")
            self.connection.close()
            self.connection = None


def blocked_insert(database: sa.Engine) -> int | None:
    """The backend pid of an INSERT INTO call_events waiting for a lock, if there is one."""
    with database.connect() as conn:
        return conn.execute(sa.text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
            "AND state = 'active' AND query LIKE 'INSERT INTO call_events%'")).scalar()


def holds_lock_on(database: sa.Engine, pid: int, table: str) -> bool:
    with database.connect() as conn:
        return bool(conn.execute(sa.text(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "WHERE l.pid = :pid AND c.relname = :table AND l.mode = 'RowExclusiveLock' AND l.granted"),
            {"pid": pid, "table": table}).scalar())


def kill_worker_mid_request(server: Gunicorn, database: sa.Engine, url: str, data: dict[str, str], *,
                            lock_mode: str, written_first: str | None = None) -> None:
    """Send the request, see it block inside the worker, SIGKILL the worker, release the lock,
    and wait for gunicorn's replacement worker."""
    worker = server.worker()
    lock = HeldLock(database, "call_events", lock_mode)
    outcome: dict = {}

    def send():
        try:
            outcome["answer"] = post(url, data)
        except OSError as exc:
            outcome["error"] = exc

    sender = threading.Thread(target=send, name="twilio")
    try:
        sender.start()
        backend = poll(lambda: blocked_insert(database), within=15, what="the step's INSERT to wait for the lock")
        if written_first:
            # The same transaction has already written the row that matters: killing now loses
            # it uncommitted, which is the point.
            assert holds_lock_on(database, backend, written_first)
        os.kill(worker, signal.SIGKILL)
        sender.join(15)
        assert not sender.is_alive(), "the request was still open after its worker was killed"
        assert "answer" not in outcome, f"the killed worker answered: {outcome['answer']}"
    finally:
        lock.release()
        sender.join(15)
    poll(lambda: [pid for pid in children(server.process.pid) if pid != worker], within=15,
         what="gunicorn to start a new worker")
    server.wait_ready()


def scalar(database: sa.Engine, sql: str, **params):
    with database.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


# ---- the tests -------------------------------------------------------------------------------
def test_a_menu_step_whose_worker_was_killed_is_stored_once_when_twilio_retries(server, database):
    call = Call(server)
    call.call()
    url, data = call.next_press("1")  # English, at the greeting
    step = int(query(url)["step"])
    kill_worker_mid_request(server, database, url, data, lock_mode="ACCESS EXCLUSIVE")
    stored = "SELECT count(*) FROM call_events WHERE call_sid = :sid AND step = :step"
    # A menu step is one autocommit INSERT: the server may still carry it out after its
    # client died (it learns of the death only when it replies). Either way, exactly once:
    assert scalar(database, stored, sid=call.sid, step=step) in (0, 1)

    retried = post(url, data).twiml()  # Twilio's retry: the identical signed request
    assert "How can we help you today?" in " ".join(s.text for s in retried.iter("Say"))
    assert scalar(database, stored, sid=call.sid, step=step) == 1
    assert scalar(database, "SELECT count(*) FROM call_events WHERE call_sid = :sid", sid=call.sid) == 1
    assert scalar(database, "SELECT count(*) FROM calls WHERE call_sid = :sid", sid=call.sid) == 1
    assert scalar(database, "SELECT language FROM call_events WHERE call_sid = :sid AND step = :step",
                  sid=call.sid, step=step) == "en"

    # ... and the call goes on from there as if nothing happened.
    call.doc = retried
    call.press("5")
    assert "Patient services is not taking calls by phone right now." in call.text()
    assert scalar(database, "SELECT count(*) FROM callbacks") == 0


def test_the_callback_request_whose_worker_was_killed_is_stored_once_when_twilio_retries(server, database):
    call = Call(server)
    call.call()
    call.press("1", "5")  # English; patient services is closed: callback capture
    call.press("1", "2", "1")  # this number, afternoon, voicemail may name the clinic
    url, data = call.next_press("2")  # no message: the step that stores the request
    # SHARE mode lets the step read the call's earlier answers from call_events and insert the
    # callback request, then stops it at its own INSERT into call_events, before the commit.
    kill_worker_mid_request(server, database, url, data, lock_mode="SHARE", written_first="callbacks")
    assert scalar(database, "SELECT count(*) FROM callbacks") == 0  # died uncommitted

    for attempt in (1, 2):  # the retry, and a second retry of the same step
        retried = post(url, data).twiml()
        text = " ".join(s.text for s in retried.iter("Say"))
        assert CONFIRMATION in text, (attempt, text)
        assert [child.tag for child in retried][-1] == "Hangup"
    assert scalar(database, "SELECT count(*) FROM callbacks") == 1
    assert scalar(database, "SELECT count(*) FROM callbacks WHERE call_sid = :sid AND phone = :phone "
                           "AND status = 'open' AND preferred_window = 'afternoon' AND voicemail_ok",
                 sid=call.sid, phone=CALLER) == 1
    assert scalar(database, "SELECT count(*) FROM calls WHERE call_sid = :sid AND outcome = 'callback_requested' "
                           "AND callback_id = (SELECT id FROM callbacks)", sid=call.sid) == 1
    assert scalar(database, "SELECT count(*) FROM calls") == 1
    duplicated = scalar(database, "SELECT count(*) FROM (SELECT step FROM call_events WHERE call_sid = :sid "
                                 "GROUP BY step HAVING count(*) > 1) d", sid=call.sid)
    assert duplicated == 0

    # The call ends; the status callback must not turn the stored request into a missed call.
    post(server.base + "/voice/status", call.fields(CallStatus="completed", CallDuration="120"))
    assert scalar(database, "SELECT count(*) FROM callbacks") == 1
    assert scalar(database, "SELECT count(*) FROM callbacks WHERE missed") == 0
