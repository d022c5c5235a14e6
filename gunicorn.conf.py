"""gunicorn settings for the Procfile's web process (Heroku-style: PORT, WEB_CONCURRENCY)."""

import gc
import os
import sys
import time

from gunicorn.glogging import Logger

from voiceline.logs import request_id, utc_timestamp


def _whole_number(name: str, default: int, low: int, high: int) -> int:
    """A setting read from the environment (empty: the default), or one line and exit, as the
    app does for its own settings: WEB_CONCURRENCY=0 would start a master with no workers."""
    raw = os.environ.get(name, "").strip() or str(default)
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        print(f"voiceline: cannot start: {name}: expected a whole number from {low} to {high}, got {raw!r}",
              file=sys.stderr, flush=True)
        sys.exit(4)  # as voiceline.wsgi does for a bad setting
    return value


# (Upper-case names are not gunicorn settings: it ignores them. README gives the same ranges.)
PORT_RANGE = (1, 65535)
WEB_CONCURRENCY_RANGE = (1, 64)  # each worker holds up to 15 database connections
bind = f"0.0.0.0:{_whole_number('PORT', 5000, *PORT_RANGE)}"
workers = _whole_number("WEB_CONCURRENCY", 2, *WEB_CONCURRENCY_RANGE)
# Load the app once in the master: a broken prompts file or setting stops start-up with
# one clear line before any worker forks, and workers share the loaded code's memory.
preload_app = True
# Twilio gives up on a webhook after 15 s; a request still running at 20 s is stuck.
timeout = 20
graceful_timeout = 10
# gunicorn 25.1+ opens a control socket at one path per user ($HOME/.gunicorn/gunicorn.ctl),
# which a second gunicorn on the host takes over. Nothing here uses it. (Older versions
# ignore a setting they do not know.)
control_socket_disable = True


class AccessLogger(Logger):
    """gunicorn's logger, with ISO-8601 UTC times (as the app's lines have) and a request id
    fit for a log line: X-Request-ID is the client's own when no router replaces it."""

    def now(self):
        return utc_timestamp(time.time())

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["{x-request-id}i"] = request_id(atoms.get("{x-request-id}i")) or "-"
        return atoms


logger_class = AccessLogger
accesslog = "-"
# Paths and query strings carry node names and step numbers only, never caller data. The
# request id matches the app's log lines of the same request (voiceline/logs.py).
access_log_format = '%(t)s %(h)s "%(r)s" %(s)s %(b)s %(M)sms request_id=%({x-request-id}i)s'


def pre_fork(server, worker):
    """Freeze what the master loaded (the app, its code, prompts and metadata: some 150,000
    objects) before each fork, as Python's gc documentation advises for forking servers: a
    worker's full garbage collections then skip them, rather than walking them all and
    writing to every shared page they live on (which turns shared memory into a private copy)."""
    gc.freeze()


def post_fork(server, worker):
    """Each worker opens its own database connections (none are inherited across fork)."""
    from voiceline.extensions import db
    from voiceline.wsgi import app

    with app.app_context():
        db.engine.dispose(close=False)
