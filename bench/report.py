"""bench/RESULTS.md from the results run.py collected."""

from __future__ import annotations

import datetime as dt

DB_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
THROUGHPUT_TARGET = 0.60
P99_TARGET_MS = 30.0
QUEUE_P95_TARGET_MS = 100.0
MEMORY_TARGET_MB = 80.0


def ms(value) -> str:
    if value is None:
        return "–"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def num(value, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def ratio(a, b) -> float | None:
    return (a / b) if a is not None and b else None


def ratios_text(ratios: list[float]) -> str:
    return ", ".join(f"{r:.2f}" for r in ratios)


def verdict(ok: bool | None) -> str:
    return "–" if ok is None else ("**PASS**" if ok else "**MISS**")


def render(results: dict) -> str:
    out: list[str] = []
    w = out.append
    machine = results["machine"]
    args = results["args"]
    dbs = results["databases"]
    runtime = results.get("runtime_s", 0)
    w("# Voiceline benchmark results\n")
    w(f"Written by `make bench` (bench/run.py) on {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}, "
      f"code at {machine['commit']}; the whole run took {runtime / 60:.1f} min. "
      "See bench/README.md for how to run it, what each number means and the caveats.\n")

    others = sorted(cell[m].get("other_cores", 0) for db in dbs.values() for cell in (db.get("cells") or {}).values()
                    for m in ("bare", "signed", "ours"))
    if others and others[len(others) // 2] > 0.1:
        w(f"> **This run was disturbed**: in the median cell, processes other than the servers, PostgreSQL and the "
          f"load generator used {others[len(others) // 2]:.2f} of the {machine['cores']} cores "
          f"(from {others[0]:.2f} to {others[-1]:.2f}). Absolute throughputs and latencies are low and noisy; the "
          "ratios of neighbouring cells and the CPU cost per request (which depends far less on load) are the "
          "numbers to go by. Re-run on a quiet machine for absolute numbers.\n")

    # ---- targets first -------------------------------------------------------------------------
    w("## Targets\n")
    w("Why we miss where we do, what profiling found and what we changed: "
      "[bench/README.md, Where we stand](README.md#where-we-stand-and-why-2026-11-27).\n")
    w("| target | database | measured | result |")
    w("| --- | --- | --- | --- |")
    for key, db in dbs.items():
        name = DB_NAMES.get(key, key)
        if db.get("skipped"):
            w(f"| all | {name} | not measured: {db['skipped']} | – |")
            continue
        cells = db["cells"]
        ratios = {c: ratio(cell["ours"]["rps"], cell["signed"]["rps"]) for c, cell in cells.items()}
        head = ratios.get(50, ratios.get(str(50)))
        others = ", ".join(f"{c}: {r:.2f}" for c, r in ratios.items() if str(c) != "50" and r is not None)
        c50 = _cell(cells, 50)
        by_cpu = ratio(cost(c50["signed"], None), cost(c50["ours"], key)) if c50 else None
        cpu_note = (f"; by CPU cost per request {by_cpu:.2f} ({num(cost(c50['ours'], key))} vs "
                    f"{num(cost(c50['signed'], None))} µs)" if by_cpu else "")
        runs = c50.get("repeat_ratios") if c50 else None
        runs_note = f"the median of {len(runs)} interleaved runs ({ratios_text(runs)}): " if runs else ""
        w(f"| full-flow webhooks ≥ {THROUGHPUT_TARGET:.0%} of bare+signature throughput (50 calls at once) | {name} | "
          f"{runs_note}{head:.2f} of bare+signature ({num(c50['ours']['rps'])} vs "
          f"{num(c50['signed']['rps'])} req/s{'; other concurrencies ' + others if others else ''}{cpu_note}) | "
          f"{verdict(head >= THROUGHPUT_TARGET if head is not None else None)} |" if head is not None else
          f"| full-flow ≥ 60% of bare+signature | {name} | no 50-call cell | – |")
        c50 = _cell(cells, 50)
        if c50:
            p99 = c50["ours"]["p99_ms"]
            paced = db.get("paced")
            if paced:
                w(f"| p99 < {P99_TARGET_MS:.0f} ms at 50 concurrent calls, 2 cores | {name} | {ms(paced['p99_ms'])} ms "
                  f"(50 calls, each caller pausing about 1 s between key presses: ≈{num(paced['rps'])} webhooks/s) | "
                  f"{verdict(paced['p99_ms'] is not None and paced['p99_ms'] < P99_TARGET_MS)} |")
            else:
                w(f"| p99 < {P99_TARGET_MS:.0f} ms at 50 concurrent calls, 2 cores | {name} | not measured: the paced "
                  f"cell was skipped (--think 0) | – |")
            floor_p99 = c50["signed"]["p99_ms"]
            w(f"| the same with no pauses at all (a saturation test) | {name} | {ms(p99)} ms (50 lines, each "
              f"sending its next webhook the moment the last one answered; the bare+signature floor: "
              f"{ms(floor_p99)} ms) | {verdict(p99 is not None and p99 < P99_TARGET_MS)} |")
        staff = db.get("staff") or {}
        http = (staff.get("http") or {}).get("GET /staff/ (queue page)")
        service = (staff.get("services") or {}).get("queue_page (open, page 1)")
        rows = (staff.get("seeded") or {}).get("total")
        if http and http.get("p95_ms") is not None:
            w(f"| queue page p95 < {QUEUE_P95_TARGET_MS:.0f} ms at 100k rows | {name} | {ms(http['p95_ms'])} ms over HTTP "
              f"(GET /staff/, {num(rows)} rows; service alone {ms(service['p95_ms']) if service else '–'} ms) | "
              f"{verdict(http['p95_ms'] < QUEUE_P95_TARGET_MS)} |")
        elif service:
            w(f"| queue page p95 < {QUEUE_P95_TARGET_MS:.0f} ms at 100k rows | {name} | {ms(service['p95_ms'])} ms "
              f"**in process only** (queue_page service, {num(rows)} rows; the HTTP page was not measured: "
              f"no staff routes yet) | {verdict(service['p95_ms'] < QUEUE_P95_TARGET_MS)} (service only) |")
        memory = [m.get("VmHWM") for m in db.get("memory") or [] if m.get("VmHWM") is not None]
        webhooks_only = [m.get("VmHWM") for m in db.get("memory_after_webhooks") or [] if m.get("VmHWM") is not None]
        if memory:
            peaks = ((staff.get("http") or {}).get("_peak_rss_mb")) or {}
            jump = ""
            if peaks.get("before sign-in") and peaks.get("after sign-in"):
                jump = (f"; the highest worker went {peaks['before sign-in']:.1f} → {peaks['after sign-in']:.1f} MB "
                        "on the one staff sign-in (the scrypt password check)")
            w(f"| < {MEMORY_TARGET_MB:.0f} MB per worker | {name} | peak RSS (VmHWM) after the webhook cells "
              f"{', '.join(f'{m:.1f}' for m in webhooks_only)} MB; after the staff side too "
              f"{', '.join(f'{m:.1f}' for m in memory)} MB{jump} | {verdict(max(memory) < MEMORY_TARGET_MB)}"
              f"{' (webhooks alone: ' + ('PASS' if max(webhooks_only) < MEMORY_TARGET_MB else 'MISS') + ')' if webhooks_only else ''} |")
    w("")

    # ---- machine and settings ---------------------------------------------------------------------
    w("## Machine\n")
    versions = machine["versions"]
    load = ", ".join(f"{x:.2f}" for x in machine["loadavg_at_start"])
    w("| | |\n| --- | --- |")
    w(f"| CPU | {machine['cores']} cores, {machine['cpu']}; {machine['memory_gb']} GB RAM; kernel {machine['kernel']} |")
    w(f"| load average when the run started | {load} (anything above ~0.5 means something else was using the cores) |")
    w(f"| Python | {machine['python']} |")
    w(f"| packages | gunicorn {versions['gunicorn']}, Flask {versions['flask']}, Werkzeug {versions['werkzeug']}, "
      f"SQLAlchemy {versions['sqlalchemy']}, twilio {versions['twilio']}, psycopg {versions['psycopg']}, "
      f"phonenumbers {versions['phonenumbers']} |")
    for key, db in dbs.items():
        w(f"| {DB_NAMES.get(key, key)} | {db.get('server_version') or db.get('skipped')} |")
    w("")
    w("## Settings\n")
    plan = results["plan"]
    weights = sum(s["weight"] for s in plan["scenarios"])
    mean_requests = sum(s["weight"] * len(s["steps"]) for s in plan["scenarios"]) / weights
    w("- **Servers**: `gunicorn --config gunicorn.conf.py voiceline.wsgi:app` as in the Procfile: "
      "WEB_CONCURRENCY=2 sync workers, preload_app, VOICELINE_ENV=production, LOG_LEVEL=WARNING, "
      "BUSINESS_HOURS=closed; migrations applied first with `voiceline db upgrade`. Bound to 127.0.0.1. "
      "The access log is **on but written to /dev/null** (`--access-logfile /dev/null`: each line is still "
      "formatted, as in production, but not written to a terminal). The floors (bench/floors.py) run under the "
      "same gunicorn settings (the same config minus its post_fork hook), one server for /bare and /signed.")
    w(f"- **Load**: a separate process (bench/loadgen.py, one epoll loop) plays N phone lines at once (10, 50, 200), "
      f"each line one whole call after another, each call's webhooks in order, the next sent as soon as the "
      f"previous answered (no pause: a saturation test). One TCP connection per request (sync workers close "
      f"every connection). {args['warmup']:.0f} s warm-up, then {args['seconds']:.0f} s measured per cell; the "
      f"cells of one concurrency run back to back (bare, bare+signature, ours) so the ratios compare neighbours; "
      f"at 50 calls the three run {args.get('repeat', 1)} time(s) over, interleaved, and the median run is reported.")
    w("- **Signed webhooks** with Twilio's full field set (~450–600-byte bodies), re-signed per call; every "
      "response is checked for status 200 and for the next action URL (or `<Hangup />`, `<Response />`). "
      "The floors get the same bodies, headers and query strings, re-signed for their URL.")
    w(f"- **Call mix** (weights; {mean_requests:.1f} webhooks per call on average):\n")
    w("| scenario | weight | webhooks | SQL statements per call | what the caller does |")
    w("| --- | --- | --- | --- | --- |")
    for s in plan["scenarios"]:
        sql = sum(step.get("sql_statements", 0) for step in s["steps"])
        w(f"| {s['name']} | {s['weight']} | {len(s['steps'])} | {sql} | {s['description']} |")
    w("")

    # ---- webhooks ------------------------------------------------------------------------------------
    for key, db in dbs.items():
        name = DB_NAMES.get(key, key)
        if db.get("skipped"):
            continue
        w(f"## Webhooks on {name}\n")
        w("| calls at once | endpoint | req/s | p50 ms | p95 ms | p99 ms | errors | ours / bare | ours / bare+sig "
          "| CPU µs per request | cores used: generator / other processes |")
        w("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for c, cell in db["cells"].items():
            runs = cell.get("repeat_ratios")
            shown = f"{c} (run {cell['repeat_chosen']} of {len(runs)})" if runs else c
            for mode, label in (("bare", "bare Flask"), ("signed", "bare + signature"), ("ours", "**Voiceline, whole calls**")):
                r = cell[mode]
                r_bare = ratio(r["rps"], cell["bare"]["rps"]) if mode == "ours" else None
                r_sig = ratio(r["rps"], cell["signed"]["rps"]) if mode == "ours" else None
                w(f"| {shown} | {label} | {num(r['rps'])} | {ms(r['p50_ms'])} | {ms(r['p95_ms'])} | {ms(r['p99_ms'])} | "
                  f"{r['errors_total']} | {f'**{r_bare:.2f}**' if r_bare else ''} | {f'**{r_sig:.2f}**' if r_sig else ''} | "
                  f"{cpu_text(r, key if mode == 'ours' else None)} | {r['gen_cores']:.2f} / {r.get('other_cores', 0):.2f} |")
        paced = db.get("paced")
        if paced:
            w(f"| {paced['concurrency']} paced | Voiceline, {paced.get('think_s', 1):g} s mean pause between a call's webhooks | "
              f"{num(paced['rps'])} | {ms(paced['p50_ms'])} | {ms(paced['p95_ms'])} | {ms(paced['p99_ms'])} | "
              f"{paced['errors_total']} | | | {cpu_text(paced, key)} | {paced['gen_cores']:.2f} / {paced.get('other_cores', 0):.2f} |")
        w("")
        repeated = [(c, cell["repeat_ratios"]) for c, cell in db["cells"].items() if cell.get("repeat_ratios")]
        for c, runs in repeated:
            w(f"At {c} calls at once the three cells ran {len(runs)} times, interleaved; ours / bare+sig in each run: "
              f"{ratios_text(runs)}. The rows above are the median run.\n")
        w("*ours / bare* and *ours / bare+sig* divide throughputs measured back to back. *CPU µs per request* is "
          "the gunicorn workers' CPU time (plus PostgreSQL's server processes for Voiceline on PostgreSQL) divided "
          "by the requests served, warm-up and drain included: it depends far less than throughput on how busy the machine was. "
          "*Other processes* is CPU that neither the servers, PostgreSQL nor the generator used (another program "
          "on the machine): above ~0.1 cores that cell was disturbed.")
        w("")
        wal = [(c, cell["ours"]["wal_per_request"]) for c, cell in db["cells"].items()
               if cell["ours"].get("wal_per_request")]
        if wal:
            w("**PostgreSQL's write-ahead log** per Voiceline request (pg_stat_wal, whole cell): "
              + "; ".join(f"{c} calls: {num(x['records'], 1)} records, {num(x['bytes'] / 1024, 1)} kB, "
                          f"{num(x['fpi'], 2)} full-page images" for c, x in wal)
              + ". After a checkpoint begins, the next change to each page writes the whole page: a cell with "
                "several times the full-page images of its neighbours had one begin shortly before or during it.")
            w("")
        rec = db.get("reconcile")
        if rec:
            problems = rec["problems"]
            w(f"**Reconciliation** after the webhook cells: {num(rec['calls'])} calls simulated "
              f"({num(rec['calls_ok'])} with every response 200 and as expected). "
              + ("The database holds exactly one open callback request per simulated phone, with the scenario's "
                 "reason, call and recording, and exactly the expected rows: "
                 if not problems else "**Mismatches**: " + "; ".join(f"{k}: {v}" for k, v in problems.items()) + ". Rows: ")
              + ", ".join(f"{t} {num(rec['found'][t])}/{num(rec['expected'][t])}" for t in rec["expected"])
              + " (found/expected). Call outcomes: " + ", ".join(f"{k} {num(v)}" for k, v in rec["outcomes"].items()) + ".\n")

    # per-step latency at 50
    # Per step: the paced cell (no queueing, so each step's own time), else the 50-call cell.
    steps_tables = [(key, {"ours": db["paced"]} if db.get("paced") else _cell(db.get("cells") or {}, 50))
                    for key, db in dbs.items() if not db.get("skipped")]
    steps_tables = [(k, c) for k, c in steps_tables if c]
    paced_steps = all(dbs[k].get("paced") for k, _ in steps_tables)
    if steps_tables:
        w("### Per webhook step (Voiceline, " + ("the paced cell: 50 calls, 1 s between webhooks, no queueing"
                                                 if paced_steps else "50 calls at once") + ")\n")
        header = "| step | SQL statements | " + " | ".join(
            f"{DB_NAMES.get(k, k)} n | {DB_NAMES.get(k, k)} p50 ms | {DB_NAMES.get(k, k)} p95 ms" for k, _ in steps_tables) + " |"
        w(header)
        w("| --- | ---: | " + " | ".join("---: | ---: | ---:" for _ in steps_tables) + " |")
        sql = {}
        for s in plan["scenarios"]:
            for step in s["steps"]:
                sql.setdefault(step["label"], set()).add(step.get("sql_statements"))
        labels = []
        for s in plan["scenarios"]:
            for step in s["steps"]:
                if step["label"] not in labels:
                    labels.append(step["label"])
        for label in labels:
            cols = []
            for _, cell in steps_tables:
                st = cell["ours"]["per_label"].get(label) or {}
                cols.append(f"{num(st.get('count'))} | {ms(st.get('p50_ms'))} | {ms(st.get('p95_ms'))}")
            w(f"| {label} | {'/'.join(str(x) for x in sorted(v for v in sql[label] if v is not None))} | " + " | ".join(cols) + " |")
        w("")
        w("SQL statements: what the step sends (recorded in process; BEGIN/COMMIT not counted); two values when "
          "the step differs between scenarios. " + ("Unsaturated, so each step's latency is its own cost; n is small, "
                                                    "read p95 loosely.\n" if paced_steps else
                                                    "At saturation every step waits in the same queue.\n"))

    # ---- staff -----------------------------------------------------------------------------------------
    w("## Staff side\n")
    any_staff = False
    for key, db in dbs.items():
        staff = db.get("staff")
        if not staff:
            continue
        any_staff = True
        seeded = staff["seeded"]
        w(f"**{DB_NAMES.get(key, key)}**: {num(seeded['total'])} callback requests ({num(seeded['open'])} open), "
          f"{num(seeded['added'])} of them bulk-inserted in {seeded['seconds']} s"
          + (" then ANALYZE" if key == "postgresql" else "") + ".\n")
        w("| measured | how | n | p50 ms | p95 ms | max ms | notes |")
        w("| --- | --- | ---: | ---: | ---: | ---: | --- |")
        http = staff.get("http")
        if http:
            if http.get("error"):
                w(f"| HTTP | – | – | – | – | – | {http['error']} |")
            for name, st in http.items():
                if isinstance(st, dict) and "count" in st:
                    notes = ", ".join(f"HTTP {code} ×{count}" for code, count in (st.get("statuses") or {}).items())
                    notes += " (3 of them warm-up)" + (
                        f", {st['distinct_redirects']} distinct redirects" if "distinct_redirects" in st else "")
                    w(f"| {name} | HTTP, signed in, gunicorn | {st['count']} | {ms(st['p50_ms'])} | {ms(st['p95_ms'])} | "
                      f"{ms(st['max_ms'])} | {notes} |")
                elif isinstance(st, dict) and st.get("error"):
                    w(f"| {name} | HTTP | – | – | – | – | {st['error']} |")
        else:
            w("| GET /staff/, POST /staff/next | HTTP | – | – | – | – | **not measured: the staff UI had no "
              "sign-in/queue/next routes when this ran** (the measurement is wired in bench/staff.py and runs "
              "as soon as they exist) |")
        services = staff.get("services") or {}
        notes = services.get("_notes", {})
        for name, st in services.items():
            if name.startswith("_"):
                continue
            extra = ""
            if name.startswith("queue_page (open"):
                extra = f"{num(notes.get('open_items'))} open items"
            if name.startswith("claim_next"):
                extra = f"{notes.get('next_claimed')} claimed, {notes.get('next_distinct')} distinct"
            w(f"| {name} | in process, fresh session | {st['count']} | {ms(st['p50_ms'])} | {ms(st['p95_ms'])} | "
              f"{ms(st['max_ms'])} | {extra} |")
        w("")
    if not any_staff:
        w("Not measured.\n")

    # ---- memory ------------------------------------------------------------------------------------------
    w("## Memory per gunicorn worker\n")
    w("Read from /proc after the run (peak = VmHWM; PSS shares preloaded pages with the master and the other "
      "worker; private = pages only this worker has).\n")
    w("| server | when | worker pid | peak RSS MB | RSS now MB | PSS MB | private MB |")
    w("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for key, db in dbs.items():
        for when, field in (("after the webhook cells", "memory_after_webhooks"), ("after the staff side too", "memory")):
            for m in db.get(field) or []:
                w(f"| Voiceline on {DB_NAMES.get(key, key)} | {when} | {m['pid']} | {m.get('VmHWM', '–')} | "
                  f"{m.get('VmRSS', '–')} | {m.get('Pss', '–')} | {m.get('Private', '–')} |")
    for m in results.get("floors_memory") or []:
        w(f"| floors (bare Flask + twilio) | end | {m['pid']} | {m.get('VmHWM', '–')} | {m.get('VmRSS', '–')} | "
          f"{m.get('Pss', '–')} | {m.get('Private', '–')} |")
    w("")
    for key, db in dbs.items():
        peaks = (((db.get("staff") or {}).get("http")) or {}).get("_peak_rss_mb")
        if peaks:
            w(f"Peak RSS of the busiest Voiceline worker on {DB_NAMES.get(key, key)} through the staff side: "
              + ", ".join(f"{when} {value:.1f} MB" for when, value in peaks.items()) + ". The staff "
              "password hash (scrypt, n=2^13, r=8: voiceline.auth.PASSWORD_METHOD) needs 8 MiB while "
              "it checks one password.\n")

    # ---- hotspots ------------------------------------------------------------------------------------------
    profiled = [(k, db) for k, db in dbs.items() if db.get("hotspots")]
    if profiled:
        w("## Where the time goes (py-spy, both workers, one extra 50-call cell)\n")
        w("Sampled at 100 Hz (wall clock, `--idle`: blocked time included) while the workers served whole calls; "
          "samples of a worker waiting for its next connection are left out. That cell's throughput is not in the "
          "tables above (py-spy slows the workers a little).\n")
        for key, db in profiled:
            hs = db["hotspots"]
            name = DB_NAMES.get(key, key)
            if hs.get("error"):
                w(f"{name}: {hs['error']}\n")
                continue
            w(f"### {name} ({num(hs['samples'])} busy samples; {num(hs.get('idle_samples'))} samples of a worker "
              "waiting for a connection left out)\n")
            w("| self time by package | % | | self time by function | % |")
            w("| --- | ---: | --- | --- | ---: |")
            rows = max(len(hs["packages"]), len(hs["self"]))
            for i in range(min(rows, 15)):
                p = hs["packages"][i] if i < len(hs["packages"]) else ("", "")
                f = hs["self"][i] if i < len(hs["self"]) else ("", "")
                w(f"| {p[0]} | {p[1]} | | `{f[0]}` | {f[1]} |" if f[0] else f"| {p[0]} | {p[1]} | | | |")
            w("")
            if hs.get("waits"):
                w("Waiting inside requests (share of the busy samples; py-spy ran with --idle, so time blocked in a "
                  "system call counts):\n")
                w("| blocked on | % |")
                w("| --- | ---: |")
                for what, share in hs["waits"]:
                    w(f"| {what} | {share} |")
                w("")
            w("| Voiceline function (inclusive: itself and what it calls) | % of samples |")
            w("| --- | ---: |")
            for func, share in hs["voiceline_inclusive"]:
                w(f"| `{func}` | {share} |")
            w("")

    else:
        w("## Where the time goes\n")
        w("Not profiled in this run (`--profile off`, or py-spy is not in the virtualenv: "
          "`.venv/bin/pip install py-spy`, then `make bench` again). `bench/replay.py` profiles the app in "
          "process without it (bench/README.md).\n")

    # ---- generator ------------------------------------------------------------------------------------------
    w("## The load generator's own cost\n")
    w("It shares the 2 cores with the servers. Each cell above lists the cores it used in its window "
      "(`generator cores`), and each server's CPU per request comes from its workers' /proc counters, "
      "independent of throughput.")
    gen = [cell[m]["gen_cpu_us_per_req"] for db in dbs.values() for cell in (db.get("cells") or {}).values()
           for m in ("bare", "signed", "ours")]
    if gen:
        w(f" The generator spent {min(gen):.0f}–{max(gen):.0f} µs of CPU per request (connect, send, receive, close: "
          "most of it the kernel's loopback TCP work).")
    wrk = results.get("wrk")
    if wrk:
        w(" For comparison, wrk (C, 1 thread, 50 connections, one fixed signed webhook body) against the same floor "
          "server:\n")
        w("| floor | wrk req/s | wrk p50 ms | wrk p99 ms | errors |")
        w("| --- | ---: | ---: | ---: | ---: |")
        for mode, r in wrk.items():
            w(f"| {mode} | {num(r.get('rps'))} | {ms(r.get('p50_ms'))} | {ms(r.get('p99_ms'))} | {r.get('errors', 0)} |")
    w("")
    return "\n".join(out) + "\n"


def cost(r: dict, database: str | None) -> float | None:
    """CPU µs per request: the workers', plus PostgreSQL's for the app on PostgreSQL."""
    server = r.get("server_cpu_us_per_req")
    if server is None:
        return None
    return server + (r.get("postgres_cpu_us_per_req") or 0 if database == "postgresql" else 0)


def cpu_text(r: dict, database: str | None) -> str:
    total = cost(r, database)
    if total is None:
        return "–"
    if database == "postgresql":
        return f"{num(total)} ({num(r.get('server_cpu_us_per_req'))} + PG {num(r.get('postgres_cpu_us_per_req'))})"
    return num(total)


def _cell(cells: dict, c: int):
    return cells.get(c) or cells.get(str(c))
