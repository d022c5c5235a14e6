"""The release step, `voiceline db upgrade`: runs at once take turns, a migration gives up on
a table lock quickly rather than holding up calls, and a failure is one line.

The PostgreSQL tests run the real console script on a throwaway database each creates on
the TEST_DATABASE_URL server. Without TEST_DATABASE_URL they skip and say so; with
VOICELINE_REQUIRE_POSTGRES=1 (set by .ci/run) they fail instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from tests.conftest import PRODUCTION_SETTINGS, _postgres_database
from voiceline.health import SCHEMA_REVISION
from voiceline.migrating import LOCK_TIMEOUT_SECONDS, MIGRATION_LOCK_KEY, migration_failure

VOICELINE = str(Path(sys.executable).with_name("voiceline"))


# ---- the one line (no database needed) ---------------------------------------------------------


class LockNotAvailable(Exception):
    sqlstate = "55P03"


def test_a_lock_timeout_names_the_table_and_says_to_retry():
    error = OperationalError("ALTER TABLE callbacks ADD COLUMN erased_at TIMESTAMP WITH TIME ZONE", {},
                             LockNotAvailable("canceling statement due to lock timeout"))
    assert migration_failure(error) == (
        f"could not take a lock on table callbacks within {LOCK_TIMEOUT_SECONDS} s (a long transaction holds "
        "it; this release changed nothing); retry the release")


def test_another_database_error_is_its_first_line():
    error = sa.exc.IntegrityError("INSERT INTO alembic_version ...", {}, Exception(
        'duplicate key value violates unique constraint "alembic_version_pkc"\nDETAIL:  Key (version_num)=(x)'))
    assert migration_failure(error) == 'duplicate key value violates unique constraint "alembic_version_pkc"'


# ---- on PostgreSQL ---------------------------------------------------------------------------------


@pytest.fixture
def empty_database():
    """A database of its own, dropped afterwards (advisory locks belong to one database)."""
    admin_url = os.environ.get("TEST_DATABASE_URL")
    if not admin_url:
        reason = "PostgreSQL only: set TEST_DATABASE_URL (the release step's locks are PostgreSQL's)"
        if os.environ.get("VOICELINE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"VOICELINE_REQUIRE_POSTGRES=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    admin, name, url = _postgres_database(admin_url)
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def release_env(engine: sa.Engine, tmp_path: Path, log_level: str) -> dict[str, str]:
    """The release step's environment, and nothing of this machine's (no .env in tmp_path)."""
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "LANG": "C.UTF-8", **PRODUCTION_SETTINGS,
            "DATABASE_URL": engine.url.render_as_string(hide_password=False), "LOG_LEVEL": log_level}


def start_release(env: dict[str, str], cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([VOICELINE, "db", "upgrade", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def revision(engine: sa.Engine) -> str:
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()


def releases_waiting(conn: sa.Connection) -> int:
    return conn.exec_driver_sql(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())").scalar_one()


def wait_until_queued(conn: sa.Connection, releases: list[subprocess.Popen], within: float = 60) -> None:
    """Until every release step waits for the migration lock the test holds. One that ends
    instead never looked for the lock: the test fails at once, with what it printed."""
    deadline = time.monotonic() + within
    while releases_waiting(conn) < len(releases):
        for release in releases:
            if release.poll() is not None:
                pytest.fail(f"a release step ran without waiting for the migration lock (exit "
                            f"{release.returncode}):\n{release.stderr.read()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"release steps still not all queued for the migration lock after {within:.0f} s")
        time.sleep(0.05)  # between checks of a poll (the steps are starting up), not a timing assumption


def test_three_release_steps_at_once_take_turns(empty_database, tmp_path):
    """Three `voiceline db upgrade` on an empty database: one migrates, the others wait for it
    and find nothing to do. (Before the lock, two of three failed with a UniqueViolation.)"""
    env = release_env(empty_database, tmp_path, "INFO")
    with empty_database.connect() as holder:
        holder.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")  # all three queue up behind it
        releases = [start_release(env, tmp_path) for _ in range(3)]
        try:
            wait_until_queued(holder, releases)
        finally:
            holder.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")
            outputs = [release.communicate(timeout=120) for release in releases]
    for release, (_stdout, stderr) in zip(releases, outputs, strict=True):
        assert release.returncode == 0 and "Traceback" not in stderr, stderr
    migrated = ["Running upgrade  -> 0001_initial" in stderr for _stdout, stderr in outputs]
    assert sorted(migrated) == [False, False, True], [stderr for _stdout, stderr in outputs]
    assert not any("Running upgrade" in stderr for (_stdout, stderr), first in zip(outputs, migrated) if not first)
    assert revision(empty_database) == SCHEMA_REVISION
    with empty_database.connect() as conn:
        assert releases_waiting(conn) == 0


def test_a_migration_gives_up_on_a_locked_table_in_one_line(empty_database, tmp_path):
    """A long transaction reading callbacks while 0004 wants to ALTER it: the release fails
    after LOCK_TIMEOUT_SECONDS (before, it waited for ever, and every webhook touching the
    table queued behind it), changes nothing, and succeeds when run again."""
    env = release_env(empty_database, tmp_path, "WARNING")
    setup = subprocess.run([VOICELINE, "db", "upgrade", "0003_call_event_outcome"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120)
    assert setup.returncode == 0, setup.stderr
    with empty_database.connect() as long_transaction:
        long_transaction.exec_driver_sql("BEGIN")
        long_transaction.exec_driver_sql("SELECT count(*) FROM callbacks")  # holds ACCESS SHARE until it ends
        # Before the lock timeout this waited for ever: subprocess's timeout then fails the test.
        failed = subprocess.run([VOICELINE, "db", "upgrade", "0004_retention"], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=60)
        long_transaction.exec_driver_sql("ROLLBACK")
    assert (failed.returncode, failed.stderr.splitlines()) == (1, [
        f"voiceline: database error: could not take a lock on table callbacks within {LOCK_TIMEOUT_SECONDS} s "
        "(a long transaction holds it; this release changed nothing); retry the release"])
    assert revision(empty_database) == "0003_call_event_outcome"
    retried = subprocess.run([VOICELINE, "db", "upgrade", "0004_retention"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=120)
    assert retried.returncode == 0, retried.stderr
    assert revision(empty_database) == "0004_retention"
