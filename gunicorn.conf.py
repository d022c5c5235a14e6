"""gunicorn settings for the Procfile's web process (Heroku-style: PORT, WEB_CONCURRENCY)."""

import gc
import os

bind = f"0.0.0.0:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Load the app once in the master: a broken prompts file or setting stops start-up with
# one clear line before any worker forks, and workers share the loaded code's memory.
preload_app = True
# Twilio gives up on a webhook after 15 s; a request still running at 20 s is stuck.
timeout = 20
graceful_timeout = 10
accesslog = "-"
# Paths and query strings carry node names and step numbers only, never caller data.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'


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
