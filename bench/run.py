"""`make bench`: Voiceline under gunicorn on SQLite and PostgreSQL, against two floors.

Writes bench/RESULTS.md (see bench/README.md for what each number means). Throwaway files
(databases, logs, raw results, profiles) go to bench/out/, which git ignores.

    .venv/bin/python bench/run.py                 # everything, about 10 minutes
    .venv/bin/python bench/run.py --quick         # a smoke run: short cells, 10,000 rows
    .venv/bin/python bench/run.py --databases sqlite --concurrency 50 --seconds 10
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from importlib import metadata
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

import hotspots  # noqa: E402
import report  # noqa: E402

TOKEN = "fedcba9876543210" * 2  # shaped like a Twilio auth token (32 lowercase hex), as production requires
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET_CONCURRENCY = 50  # the throughput target is read at 50 calls at once


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def memory_of(pid: int) -> dict:
    """Peak and current resident memory (MB) from /proc; PSS/private from smaps_rollup."""
    info: dict = {"pid": pid}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                info[key] = round(int(value.split()[0]) / 1024, 1)
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("Pss", "Private_Clean", "Private_Dirty"):
                info[key] = round(int(value.split()[0]) / 1024, 1)
    except OSError as exc:
        info["error"] = str(exc)
    if "Private_Clean" in info:
        info["Private"] = round(info.pop("Private_Clean") + info.pop("Private_Dirty"), 1)
    return info


class Server:
    """A gunicorn master started by the bench (and only ever stopped by its own pid)."""

    def __init__(self, name: str, argv: list[str], env: dict, cwd: Path, port: int, log_path: Path):
        self.name, self.argv, self.env, self.cwd, self.port, self.log_path = name, argv, env, cwd, port, log_path
        self.process: subprocess.Popen | None = None

    def start(self, health: str = "/healthz", timeout: float = 60) -> None:
        self.log_file = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdout=self.log_file,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}: see {self.log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{health}", timeout=2) as response:
                    if response.status == 200 and len(self.workers()) >= int(self.env.get("WEB_CONCURRENCY", 2)):
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer {health} within {timeout}s: see {self.log_path}")

    def workers(self) -> list[int]:
        return children_of(self.process.pid) if self.process else []

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.log_file.close()


def gunicorn_argv(bin_dir: Path, config: Path, app: str, port: int, extra: list[str]) -> list[str]:
    argv = [str(bin_dir / "gunicorn"), "--config", str(config), "--bind", f"127.0.0.1:{port}",
            "--access-logfile", "/dev/null"]
    help_text = subprocess.run([str(bin_dir / "gunicorn"), "--help"], capture_output=True, text=True).stdout
    if "--no-control-socket" in help_text:
        argv.append("--no-control-socket")  # gunicorn 25.1+: don't share ~/.gunicorn/gunicorn.ctl with others
    return argv + extra + [app]


def app_env(app_root: Path, database_url: str, port: int, **overrides: str) -> dict:
    """The Procfile's environment, every Voiceline setting given (so a developer's .env cannot
    leak into the bench: python-dotenv never overrides a variable that is set, even to "")."""
    import scenarios
    from voiceline.config import SETTINGS

    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    env.update({name: default or "" for name, default in SETTINGS.items()})
    env.update({
        "VOICELINE_ENV": "production", "SECRET_KEY": secrets.token_hex(32), "TWILIO_AUTH_TOKEN": TOKEN,
        "PATIENT_SERVICES_NUMBER": scenarios.PATIENT_SERVICES_NUMBER,
        "DATABASE_URL": database_url, "BUSINESS_HOURS": "closed", "LOG_LEVEL": "WARNING",
        "PORT": str(port), "WEB_CONCURRENCY": "2",
        "PYTHONPATH": os.pathsep.join([str(app_root), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    })
    env.update(overrides)
    return env


def run_loadgen(out: Path, name: str, plan: Path, mode: str, port: int, concurrency: int, args, *,
                watch: list[int], pool_rate: float | None = None, phone_offset: int = 0,
                think: float = 0.0, seed: int = 1, pg_database: str | None = None) -> dict:
    result = out / f"{name}.json"
    argv = [sys.executable, str(BENCH / "loadgen.py"), "--plan", str(plan), "--mode", mode, "--port", str(port),
            "--concurrency", str(concurrency), "--warmup", str(args.warmup), "--duration", str(args.seconds),
            "--result", str(result), "--seed", str(seed), "--phone-offset", str(phone_offset),
            "--think", str(think)]
    if pool_rate is not None:
        argv += ["--pool-rate", str(round(pool_rate))]
    if mode == "ours":
        argv += ["--manifest", str(out / f"{name}.calls.jsonl")]
        if pg_database:
            argv += ["--pg-database", pg_database]
    for pid in watch:
        argv += ["--watch-pid", str(pid)]
    subprocess.run(argv, check=True, timeout=args.warmup + args.seconds + 300)
    data = json.loads(result.read_text())
    data["manifest"] = str(out / f"{name}.calls.jsonl") if mode == "ours" else None
    log(f"  {name}: {data['rps']} req/s, p50 {data['p50_ms']} ms, p99 {data['p99_ms']} ms, "
        f"errors {data['errors_total']}, generator {data['gen_cores']} cores")
    return data


def pool_rate_for(signed: dict) -> float:
    """The request rate a saturation cell's pool of calls is sized for: 1.5 times what the
    signed floor served, at least 400 a second (loadgen --pool-rate)."""
    return max(400.0, 1.5 * signed["rps"])


def median_run(runs: list[dict]) -> dict:
    """The run (bare, bare+signature, ours) whose ours/bare+signature ratio is the median,
    with every run's ratio in `repeat_ratios` (in the order they ran) when there were several."""
    def ratio(trio: dict) -> float:
        return report.ratio(trio["ours"]["rps"], trio["signed"]["rps"]) or 0.0

    middle = sorted(range(len(runs)), key=lambda i: ratio(runs[i]))[(len(runs) - 1) // 2]
    chosen = dict(runs[middle])
    if len(runs) > 1:
        chosen["repeat_ratios"] = [round(ratio(trio), 3) for trio in runs]
        chosen["repeat_chosen"] = middle + 1
    return chosen


# ---- databases ---------------------------------------------------------------------------------
def create_pg_database(admin_url: str) -> tuple[str, str, str]:
    import sqlalchemy as sa

    engine = sa.create_engine(admin_url.replace("postgresql://", "postgresql+psycopg://", 1),
                              isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    name = f"voiceline_bench_{secrets.token_hex(5)}"
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        version = conn.exec_driver_sql("SHOW server_version").scalar()
    engine.dispose()
    url = sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    return url, name, version


def wal_written(admin_url: str) -> dict | None:
    """PostgreSQL's cumulative WAL counters (pg_stat_wal, PostgreSQL 14+), or None.

    After a checkpoint begins, the first change to each page writes the whole page to the
    WAL (a full-page image): for a while writes cost more. A cell that a checkpoint lands in
    (or just before) shows it as many more full-page images per request than its neighbours."""
    import psycopg

    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            records, fpi, size = conn.execute("SELECT wal_records, wal_fpi, wal_bytes FROM pg_stat_wal").fetchone()
    except psycopg.Error:
        return None
    return {"records": int(records), "fpi": int(fpi), "bytes": int(size)}


def wal_per_request(before: dict | None, after: dict | None, requests: int) -> dict | None:
    if not before or not after or requests <= 0:
        return None
    return {k: round((after[k] - before[k]) / requests, 3) for k in before}


def drop_pg_database(admin_url: str, name: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(admin_url.replace("postgresql://", "postgresql+psycopg://", 1),
                              isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    engine.dispose()


def reconcile(database_url: str, manifests: list[str], plan: dict) -> dict:
    """Exactly one callback request per simulated call (by phone), with the scenario's reason,
    call and recording; and exactly the rows each call should leave in calls/call_events/recordings."""
    import sqlalchemy as sa

    from staff import engine_for

    calls = []
    for path in manifests:
        with open(path) as f:
            calls.extend(json.loads(line) for line in f if line.strip())
    expect = {s["name"]: s["expect"] for s in plan["scenarios"]}
    engine = engine_for(database_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT phone, reason, call_sid, recording_sid, status, missed FROM callbacks")).all()
        counts = {table: conn.scalar(sa.text(f"SELECT count(*) FROM {table}"))
                  for table in ("calls", "call_events", "recordings", "callbacks", "safety_events")}
        ended = conn.scalar(sa.text("SELECT count(*) FROM calls WHERE ended_at IS NOT NULL"))
        completed_recordings = conn.scalar(sa.text("SELECT count(*) FROM recordings WHERE status = 'completed'"))
        outcomes = dict(conn.execute(sa.text("SELECT outcome, count(*) FROM calls GROUP BY outcome")).all())
    engine.dispose()
    by_phone: dict[str, list] = {}
    for row in rows:
        by_phone.setdefault(row.phone, []).append(row)
    problems: dict[str, int] = {}

    def problem(kind: str) -> None:
        problems[kind] = problems.get(kind, 0) + 1

    for call in calls:
        found = by_phone.get(call["phone"], [])
        want = expect[call["scenario"]]
        if len(found) != 1:
            problem("no callback request" if not found else "more than one request for a phone")
            continue
        row = found[0]
        if row.reason != want["reason"]:
            problem("wrong reason")
        if row.call_sid != call["call_sid"]:
            problem("request not linked to its call")
        if want["has_recording"] and row.recording_sid != call["recording_sid"]:
            problem("recording missing on the request")
        if row.status != "open" or bool(row.missed) != want["missed"]:
            problem("wrong status/missed flag")
    expected = {
        "calls": len(calls),
        "call_events": sum(expect[c["scenario"]]["call_events"] for c in calls),
        "recordings": sum(expect[c["scenario"]]["recordings"] for c in calls),
        "callbacks": len(calls),
        "safety_events": 0,
    }
    for table, want in expected.items():
        if counts[table] != want:
            problem(f"{table}: {counts[table]} rows, expected {want}")
    if ended != len(calls):
        problem(f"calls ended: {ended}, expected {len(calls)}")
    if completed_recordings != expected["recordings"]:
        problem(f"completed recordings: {completed_recordings}, expected {expected['recordings']}")
    return {"calls": len(calls), "calls_ok": sum(1 for c in calls if c["ok"]), "expected": expected,
            "found": counts, "outcomes": {str(k): v for k, v in outcomes.items()}, "problems": problems}


# ---- profiling ---------------------------------------------------------------------------------
def profile_cell(out: Path, label: str, plan: Path, server: Server, args, phone_offset: int,
                 pool_rate: float, pg_database: str | None) -> tuple[dict, dict]:
    py_spy = Path(sys.executable).parent / "py-spy"
    workers = server.workers()
    duration = int(args.warmup + args.seconds)
    recorders = []
    files = []
    for pid in workers:
        file = out / f"profile-{label}-{pid}.txt"
        files.append(file)
        recorders.append(subprocess.Popen(
            [str(py_spy), "record", "--pid", str(pid), "--duration", str(duration), "--rate", "100",
             "--format", "raw", "--function", "--idle", "--full-filenames", "--output", str(file)],
            stdout=subprocess.DEVNULL, stderr=open(out / f"profile-{label}-{pid}.log", "wb")))
    time.sleep(1.0)
    result = run_loadgen(out, f"{label}-profiled-ours-c50", plan, "ours", server.port, 50, args,
                         watch=workers, pool_rate=pool_rate, phone_offset=phone_offset, seed=99,
                         pg_database=pg_database)
    for recorder in recorders:
        try:
            recorder.wait(timeout=duration + 30)
        except subprocess.TimeoutExpired:
            recorder.terminate()
    present = [f for f in files if f.exists() and f.stat().st_size]
    return result, hotspots.summarize(present) if present else {"error": "py-spy wrote nothing (ptrace not allowed?)"}


# ---- machine -----------------------------------------------------------------------------------
def machine_info(app_root: Path) -> dict:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for package in ("gunicorn", "flask", "werkzeug", "sqlalchemy", "twilio", "psycopg", "phonenumbers"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "-"
    commit = subprocess.run(["git", "-C", str(app_root), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(app_root), "status", "--porcelain", "--", "voiceline", "prompts",
                            "migrations"], capture_output=True, text=True).stdout.strip()
    return {
        "cores": os.cpu_count(), "cpu": cpu, "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": platform.release(), "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
        "loadavg_at_start": os.getloadavg(), "versions": versions,
        "commit": (commit or "?") + (" + uncommitted changes in voiceline/" if dirty else ""),
        "wrk": shutil.which("wrk"),
    }


def wrk_calibration(out: Path, port: int, plan: dict, concurrency: int, seconds: int) -> dict:
    """The floors through wrk (C, one thread), to show what the Python generator costs."""
    from urllib.parse import urlencode

    from twilio.request_validator import RequestValidator

    step = plan["scenarios"][0]["steps"][1]
    fields = [(k, v.replace("{CallSid}", "CA" + "0" * 32).replace("{From}", "+16175550123")
               .replace("{RecordingSid}", "RE" + "0" * 32)) for k, v in step["fields"]]
    query = step["path"].split("?", 1)[1] if "?" in step["path"] else ""
    results = {}
    for mode in ("bare", "signed"):
        path = f"/{mode}" + (f"?{query}" if query else "")
        signature = RequestValidator(TOKEN).compute_signature(f"http://127.0.0.1:{port}{path}", dict(fields))
        script = out / f"wrk-{mode}.lua"
        body = urlencode(fields)
        script.write_text(
            'wrk.method = "POST"\n'
            f'wrk.body = "{body}"\n'
            'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
            f'wrk.headers["X-Twilio-Signature"] = "{signature}"\n')
        run = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency", "-s", str(script),
                              f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, timeout=seconds + 60)
        text = run.stdout
        (out / f"wrk-{mode}.txt").write_text(text + run.stderr)
        entry: dict = {"rps": None}
        for line in text.splitlines():
            parts = line.split()
            if line.startswith("Requests/sec:"):
                entry["rps"] = float(parts[1])
            elif len(parts) == 2 and parts[0] in ("50%", "99%"):
                entry[f"p{parts[0][:-1]}_ms"] = _wrk_ms(parts[1])
            elif "Non-2xx" in line:
                entry["errors"] = int(parts[-1])
        results[mode] = entry
    return results


def _wrk_ms(text: str) -> float:
    for suffix, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(suffix):
            return round(float(text[: -len(suffix)]) * factor, 2)
    return float(text)


# ---- the run -----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--app-root", type=Path, default=REPO, help="the Voiceline checkout to serve (default: this one)")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--concurrency", default="10,50,200")
    parser.add_argument("--seconds", type=float, default=12.0, help="measured seconds per cell")
    parser.add_argument("--repeat", type=int, default=3,
                        help=f"runs of the {TARGET_CONCURRENCY}-call cells (interleaved; the median ratio is reported)")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before each cell's window")
    parser.add_argument("--think", type=float, default=1.0,
                        help="mean pause (s) between a call's webhooks in the paced cell; 0 skips it")
    parser.add_argument("--staff-rows", type=int, default=100_000)
    parser.add_argument("--staff-iterations", type=int, default=100)
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", DEFAULT_PG_URL),
                        help="PostgreSQL server (its maintenance database); a throwaway database is made there")
    parser.add_argument("--profile", choices=("auto", "on", "off"), default="auto",
                        help="py-spy one extra 50-call cell per database (auto: when .venv/bin/py-spy exists)")
    parser.add_argument("--wrk", choices=("auto", "off"), default="auto", help="calibrate the floors with wrk if installed")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 s cells, 10,000 rows")
    parser.add_argument("--results", type=Path, default=BENCH / "RESULTS.md")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.warmup, args.staff_rows, args.staff_iterations, args.repeat = 3.0, 1.0, 10_000, 20, 1
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    app_root = args.app_root.resolve()
    sys.path.insert(0, str(app_root))
    started = time.time()
    bin_dir = Path(sys.executable).parent
    out = BENCH / "out" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    concurrencies = [int(c) for c in args.concurrency.split(",") if c.strip()]
    databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    profile = args.profile == "on" or (args.profile == "auto" and (bin_dir / "py-spy").exists())
    log(f"output in {out}; app from {app_root}")

    import scenarios

    info = machine_info(app_root)
    plan = scenarios.record(app_root, TOKEN, out)
    plan_path = out / "plan.json"
    plan_path.write_text(json.dumps(plan, indent=1))
    log("scenarios recorded: " + ", ".join(f"{s['name']} ({len(s['steps'])} requests)" for s in plan["scenarios"]))

    floors_port = free_port()
    floors = Server("floors", gunicorn_argv(bin_dir, BENCH / "floors_gunicorn.conf.py", "floors:app", floors_port,
                                            ["--pythonpath", str(BENCH)]),
                    {**os.environ, "TWILIO_AUTH_TOKEN": TOKEN, "WEB_CONCURRENCY": "2",
                     "BENCH_APP_GUNICORN_CONF": str(app_root / "gunicorn.conf.py")},
                    BENCH, floors_port, out / "floors.log")
    results: dict = {"machine": info, "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                     "plan": plan, "databases": {}, "profile": profile}
    try:
        floors.start()
        log(f"floors up on {floors_port}, workers {floors.workers()}")
        if args.wrk == "auto" and shutil.which("wrk"):
            log("wrk calibration of the floors (50 connections)")
            results["wrk"] = wrk_calibration(out, floors_port, plan, 50, max(3, int(args.seconds // 2)))
        for database in databases:
            results["databases"][database] = run_database(database, args, app_root, bin_dir, out, plan, plan_path,
                                                          floors, concurrencies, profile)
        results["floors_memory"] = [memory_of(pid) for pid in floors.workers()]
    finally:
        floors.stop()
    results["runtime_s"] = round(time.time() - started, 1)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    args.results.write_text(report.render(results))
    log(f"wrote {args.results} in {results['runtime_s']} s")
    return 0


def run_database(database: str, args, app_root: Path, bin_dir: Path, out: Path, plan: dict, plan_path: Path,
                 floors: Server, concurrencies: list[int], profile: bool) -> dict:
    result: dict = {"cells": {}}
    pg_name = None
    if database == "sqlite":
        url = f"sqlite:///{out / 'voiceline-bench.db'}"
        result["server_version"] = f"SQLite {sqlite3.sqlite_version} (WAL, synchronous=NORMAL)"
    elif database == "postgresql":
        try:
            url, pg_name, version = create_pg_database(args.pg_url)
        except Exception as exc:  # noqa: BLE001 - reported, the SQLite part still stands
            log(f"PostgreSQL unreachable at {args.pg_url}: {exc}")
            return {"skipped": f"PostgreSQL unreachable at {args.pg_url}: {exc.__class__.__name__}"}
        result["server_version"] = f"PostgreSQL {version}"
    else:
        raise SystemExit(f"unknown database {database!r}")
    port = free_port()
    env = app_env(app_root, url, port)
    server = Server(f"voiceline-{database}", gunicorn_argv(bin_dir, app_root / "gunicorn.conf.py",
                                                           "voiceline.wsgi:app", port, []),
                    env, app_root, port, out / f"voiceline-{database}.log")
    try:
        log(f"{database}: migrating")
        subprocess.run([str(bin_dir / "voiceline"), "db", "upgrade"], env=env, cwd=app_root, check=True,
                       stdout=subprocess.DEVNULL, stderr=open(out / f"migrate-{database}.log", "wb"))
        server.start()
        log(f"{database}: voiceline up on {port}, workers {server.workers()}")
        phone_offset = 0
        manifests = []
        for c in concurrencies:
            # The target's concurrency runs its three cells `--repeat` times over, interleaved (bare,
            # bare+signature, ours; bare, ...), and keeps the run whose ratio is the median: one run
            # on a shared VM can land on either side of a target.
            runs = []
            for n in range(args.repeat if c == TARGET_CONCURRENCY else 1):
                suffix = f"-run{n + 1}" if n else ""
                trio = {}
                trio["bare"] = run_loadgen(out, f"{database}-bare-c{c}{suffix}", plan_path, "bare", floors.port, c,
                                           args, watch=floors.workers())
                trio["signed"] = run_loadgen(out, f"{database}-signed-c{c}{suffix}", plan_path, "signed", floors.port,
                                             c, args, watch=floors.workers())
                wal_before = wal_written(args.pg_url) if pg_name else None
                trio["ours"] = run_loadgen(out, f"{database}-ours-c{c}{suffix}", plan_path, "ours", port, c, args,
                                           watch=server.workers(), pool_rate=pool_rate_for(trio["signed"]),
                                           phone_offset=phone_offset, seed=c + 1000 * n, pg_database=pg_name)
                if pg_name:
                    trio["ours"]["wal_per_request"] = wal_per_request(
                        wal_before, wal_written(args.pg_url), trio["ours"].get("requests_total", 0))
                phone_offset += trio["ours"]["calls_started"]
                manifests.append(trio["ours"]["manifest"])
                runs.append(trio)
            result["cells"][c] = median_run(runs)
        if args.think > 0:
            lines = 50
            result["paced"] = run_loadgen(out, f"{database}-ours-paced-c{lines}", plan_path, "ours", port, lines,
                                          args, watch=server.workers(), pool_rate=3 * lines / args.think,
                                          phone_offset=phone_offset, think=args.think, seed=7, pg_database=pg_name)
            phone_offset += result["paced"]["calls_started"]
            manifests.append(result["paced"]["manifest"])
        if profile:
            log(f"{database}: profiling both workers with py-spy during one more 50-call cell")
            target_cell = result["cells"].get(TARGET_CONCURRENCY) or list(result["cells"].values())[-1]
            profiled, result["hotspots"] = profile_cell(out, database, plan_path, server, args, phone_offset,
                                                        pool_rate=pool_rate_for(target_cell["signed"]),
                                                        pg_database=pg_name)
            result["profiled_cell"] = profiled
            phone_offset += profiled["calls_started"]
            manifests.append(profiled["manifest"])
        log(f"{database}: reconciling the database with the calls made")
        result["reconcile"] = reconcile(url, manifests, plan)
        log(f"{database}: reconciliation problems: {result['reconcile']['problems'] or 'none'}")
        result["memory_after_webhooks"] = [memory_of(pid) for pid in server.workers()]
        result["staff"] = run_staff(database, url, args, app_root, plan, server)
        result["memory"] = [memory_of(pid) for pid in server.workers()]
    finally:
        server.stop()
        if pg_name:
            try:
                drop_pg_database(args.pg_url, pg_name)
            except Exception as exc:  # noqa: BLE001
                log(f"could not drop {pg_name}: {exc}")
    return result


def run_staff(database: str, url: str, args, app_root: Path, plan: dict, server: Server) -> dict:
    import staff

    from voiceline import create_app

    log(f"{database}: seeding callback requests up to {args.staff_rows:,}")
    seeded = staff.seed(url, args.staff_rows, plan["prompts_version"])
    log(f"{database}: seeded {seeded}")
    from voiceline.config import SETTINGS

    config = {k: v for k, v in app_env(app_root, url, server.port).items() if k in SETTINGS}
    result = {"seeded": seeded}
    log(f"{database}: staff services in process")
    result["services"] = staff.measure_services(config, args.staff_iterations)
    routes = staff.staff_routes(create_app(config))
    if routes is None:
        result["http"] = None
        log(f"{database}: the staff UI has no sign-in/queue/next routes yet: HTTP not measured")
    else:
        log(f"{database}: staff pages over HTTP")
        workers = server.workers()
        result["http"] = staff.measure_http(server.port, routes, args.staff_iterations,
                                            probe=lambda: max(memory_of(pid).get("VmHWM", 0) for pid in workers))
    return result


if __name__ == "__main__":
    sys.exit(main())
