"""The bench's calls replayed in process: the app's own CPU per webhook, with no HTTP server.

`make bench` measures the app under gunicorn, where a webhook's time is spread over the HTTP
server, the kernel and the app. This replays the same recorded calls (scenarios.py: the same
signed requests, the same mix) straight through `app.wsgi_app` in this one process, so a
profiler sees only the app:

    .venv/bin/python bench/replay.py                          # SQLite, 600 calls
    .venv/bin/python bench/replay.py --database postgresql    # a throwaway database on BENCH_PG_URL
    .venv/bin/py-spy record -r 400 -o replay.svg -- .venv/bin/python bench/replay.py --calls 1500

Prints the CPU and wall time per webhook over the measured calls (the first 50 warm up).
Every response is checked as the load generator checks it (200 and the step's marker).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

import loadgen  # noqa: E402
import run  # noqa: E402
import scenarios  # noqa: E402

WARM_UP_CALLS = 50
PORT = 8080  # in the signed URLs; any port but 80 (werkzeug drops :80 from the host)


def environ_of(raw: bytes) -> tuple[dict, bytes]:
    """A WSGI environ (without wsgi.input) and the body, from a request as loadgen sends it."""
    head, body = raw.split(b"\r\n\r\n", 1)
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, target, _ = request_line.split(" ")
    path, _, query = target.partition("?")
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "RAW_URI": target,
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": str(PORT), "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr, "wsgi.multithread": False,
        "wsgi.multiprocess": True, "wsgi.run_once": False, "wsgi.version": (1, 0),
    }
    for line in header_lines:
        name, value = line.split(": ", 1)
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = value
    return environ, body


def replay(app, calls: list[list[tuple[dict, bytes, bytes]]]) -> int:
    wsgi = app.wsgi_app
    served = 0
    for call in calls:
        for environ, body, marker in call:
            environ = {**environ, "wsgi.input": io.BytesIO(body)}
            status: list[str] = []
            out = b"".join(wsgi(environ, lambda s, _headers, _exc=None: status.append(s)))
            if not status[0].startswith("200") or marker not in out:
                raise SystemExit(f"unexpected response {status[0]} to {environ['PATH_INFO']}: {out[:200]!r}")
            served += 1
    return served


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", run.DEFAULT_PG_URL),
                        help="PostgreSQL server (its maintenance database); a throwaway database is made there")
    parser.add_argument("--calls", type=int, default=600)
    args = parser.parse_args(argv)

    from flask_migrate import upgrade

    from voiceline import create_app, init_migrations
    from voiceline.extensions import db

    workdir = Path(tempfile.mkdtemp(prefix="voiceline-replay-"))
    plan = scenarios.record(REPO, run.TOKEN, workdir)
    dropped = None
    if args.database == "postgresql":
        url, dropped, _version = run.create_pg_database(args.pg_url)
        url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    else:
        url = f"sqlite:///{workdir / 'replay.db'}"
    try:
        app = create_app({
            "VOICELINE_ENV": "production", "SECRET_KEY": scenarios.BENCH_SECRET_KEY, "TWILIO_AUTH_TOKEN": run.TOKEN,
            "PATIENT_SERVICES_NUMBER": scenarios.PATIENT_SERVICES_NUMBER,
            "DATABASE_URL": url, "BUSINESS_HOURS": "closed", "LOG_LEVEL": "WARNING",
            "PROMPTS_DIR": str(REPO / "prompts"),
        })
        init_migrations(app)
        with app.app_context():
            upgrade()
        pool, _manifest = loadgen.build_pool(plan, "ours", PORT, args.calls, 0, 1, {})
        calls = [[(*environ_of(r.data), r.marker) for r in call] for call in pool]
        replay(app, calls[:WARM_UP_CALLS])
        cpu, wall = time.process_time(), time.perf_counter()
        served = replay(app, calls[WARM_UP_CALLS:])
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(f"{args.database}: {served:,} webhooks in {len(calls) - WARM_UP_CALLS:,} calls: "
              f"{cpu / served * 1e6:,.0f} µs CPU, {wall / served * 1e6:,.0f} µs wall per webhook")
        with app.app_context():
            db.engine.dispose()
    finally:
        if dropped:
            run.drop_pg_database(args.pg_url, dropped)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
