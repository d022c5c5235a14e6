"""The load generator: a separate process that replays whole calls as signed Twilio webhooks.

    python bench/loadgen.py --plan PLAN.json --mode ours|bare|signed --port N --concurrency C \
        --warmup S --duration S --result OUT.json [--manifest CALLS.jsonl] [--phone-offset K] ...

Each of C virtual phone lines plays one call after another, each call's requests strictly in
order (a request is sent when the previous one's response is complete), no think time: a
closed loop, like C callers pressing keys instantly. All request bytes (bodies, signatures,
headers) are built before the clock starts, so during the run the generator only moves
bytes: one single-threaded epoll loop over non-blocking sockets, one TCP connection per
request (gunicorn's sync workers close the connection after every response anyway, so this
is what Twilio gets from them too; latency includes the TCP connect).

Modes:
  ours    the app's /voice/ URLs; each call a fresh CallSid, its own caller ID (From) and
          RecordingSid, signed for http://127.0.0.1:PORT + path; each response must be 200
          and contain the step's marker (the next action URL, <Hangup />, ...).
  bare    the same bodies/headers/query strings POSTed to /bare?<query>
  signed  the same, to /signed?<query>, signed for that URL

Stats cover the requests that completed inside the window (warm-up end .. + duration), as wrk counts.
After the window, lines finish the call they are in (so every call started is whole, which the
reconciliation relies on) and start no new one; that drain is not counted.
"""

from __future__ import annotations

import argparse
import base64
import errno
import hashlib
import hmac
import heapq
import json
import math
import os
import random
import select
import socket
import sys
import time
import uuid
from array import array
from functools import lru_cache
from urllib.parse import quote_plus, urlsplit

CALL_SID, FROM, REC_SID = "{CallSid}", "{From}", "{RecordingSid}"
REQUEST_TIMEOUT = 30.0
DRAIN_TIMEOUT = 90.0

# Caller IDs: valid North American numbers (libphonenumber), 10,000 per prefix. The bench's
# staff seeding uses other prefixes, so these never collide with seeded open requests.
PHONE_PREFIXES = [
    "+1617555", "+1617382", "+1617234", "+1212555", "+1312555", "+1415555", "+1646555", "+1718555",
    "+1857555", "+1508555", "+1413555", "+1978555", "+1339555", "+1774555", "+1351555", "+1202555",
    "+1305555", "+1404555", "+1512555", "+1602555",
]


def phone_number(index: int) -> str:
    prefix = PHONE_PREFIXES[index // 10_000 % len(PHONE_PREFIXES)]
    return f"{prefix}{index % 10_000:04d}"


class Request:
    __slots__ = ("data", "marker", "label")

    def __init__(self, data: bytes, marker: bytes, label: int):
        self.data, self.marker, self.label = data, marker, label


_quote = lru_cache(maxsize=4096)(quote_plus)


def sign(token: bytes, url: str, fields: list[list[str]]) -> str:
    """X-Twilio-Signature: base64 HMAC-SHA1 over the URL + each field's name and value, sorted by
    name (what twilio's RequestValidator.compute_signature does for single-valued fields)."""
    data = url + "".join(k + v for k, v in sorted(fields))
    return base64.b64encode(hmac.new(token, data.encode(), hashlib.sha1).digest()).decode()


def build_request(method_path: str, fields: list[list[str]], host: str, signature: str) -> bytes:
    body = "&".join(f"{_quote(k)}={_quote(v)}" for k, v in fields).encode()  # = urlencode(fields)
    head = (
        f"POST {method_path} HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        "User-Agent: TwilioProxy/1.1\r\n"
        "Accept: */*\r\n"
        "Cache-Control: max-age=259200\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-Twilio-Signature: {signature}\r\n"
        f"I-Twilio-Idempotency-Token: {uuid.uuid4()}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


def build_pool(plan: dict, mode: str, port: int, calls: int, phone_offset: int, seed: int,
               labels: dict[str, int]) -> tuple[list[list[Request]], list[dict]]:
    """`calls` calls, each a list of ready-to-send requests, and a manifest line per call."""
    rng = random.Random(seed)
    token = plan["token"].encode()
    scenarios = plan["scenarios"]
    weights = [s["weight"] for s in scenarios]
    host = f"127.0.0.1:{port}"
    pool, manifest = [], []
    for number in range(calls):
        scenario = rng.choices(scenarios, weights)[0]
        call_sid = "CA" + uuid.UUID(int=rng.getrandbits(128)).hex
        rec_sid = "RE" + uuid.UUID(int=rng.getrandbits(128)).hex
        caller = phone_number(phone_offset + number)
        requests = []
        for step in scenario["steps"]:
            fields = [[k, v.replace(CALL_SID, call_sid).replace(FROM, caller).replace(REC_SID, rec_sid)]
                      for k, v in step["fields"]]
            path = step["path"]
            if mode != "ours":
                query = urlsplit(path).query
                path = f"/{mode}" + (f"?{query}" if query else "")
            signature = sign(token, f"http://{host}{path}", fields)
            marker = step["marker"].encode() if mode == "ours" else b"<Gather"
            label = labels.setdefault(step["label"] if mode == "ours" else mode, len(labels))
            requests.append(Request(build_request(path, fields, host, signature), marker, label))
        pool.append(requests)
        manifest.append({"call_sid": call_sid, "phone": caller, "scenario": scenario["name"],
                         "recording_sid": rec_sid})
    return pool, manifest


class CpuSnapshot:
    """CPU ticks of every process (/proc/*/stat) and of the whole machine (/proc/stat)."""

    def __init__(self):
        self.at = time.perf_counter()
        self.procs: dict[int, tuple[str, int, int]] = {}  # pid -> (comm, ppid, utime+stime)
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    raw = f.read()
            except OSError:
                continue
            comm = raw[raw.find("(") + 1:raw.rfind(")")]
            fields = raw[raw.rfind(")") + 2:].split()
            if comm == "postgres":  # a backend's title names its database: "postgres: 15/main: user db ..."
                try:
                    with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                        title = f.read().decode(errors="replace")
                except OSError:
                    title = ""
                comm = f"postgres:{title}"
            self.procs[int(entry.name)] = (comm, int(fields[1]), int(fields[11]) + int(fields[12]))
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        self.idle = values[3] + (values[4] if len(values) > 4 else 0)
        self.total = sum(values[:8])


def cpu_between(a: CpuSnapshot, b: CpuSnapshot, server_pids: set[int], database: str | None) -> dict:
    """Cores used between two snapshots by: this generator, the watched server (its workers and
    their master), the PostgreSQL backends serving `database`, and everything else (other work
    on the machine, PostgreSQL's background processes included)."""
    ticks = os.sysconf("SC_CLK_TCK")
    seconds = max(1e-6, b.at - a.at)
    me = os.getpid()
    masters = {a.procs[p][1] for p in server_pids if p in a.procs}
    used = {"generator": 0, "server": 0, "postgres": 0, "other": 0}
    for pid, (comm, _, after) in b.procs.items():
        before = a.procs.get(pid, (comm, 0, 0))[2]  # a process born in between: all its ticks
        delta = max(0, after - before)
        if not delta:
            continue
        if pid == me:
            used["generator"] += delta
        elif pid in server_pids or pid in masters:
            used["server"] += delta
        elif database and comm.startswith("postgres:") and f" {database} " in comm:
            used["postgres"] += delta
        else:
            used["other"] += delta
    cores = {k: round(v / ticks / seconds, 3) for k, v in used.items()}
    busy_share = ((b.total - b.idle) - (a.total - a.idle)) / max(1, b.total - a.total)
    cores["machine_busy"] = round(busy_share, 3)
    cores["ticks"] = used
    return cores


def percentile(sorted_values, q: float) -> float | None:
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarize(latencies: list[float]) -> dict:
    values = sorted(latencies)
    return {
        "count": len(values),
        "p50_ms": _ms(percentile(values, 0.50)), "p95_ms": _ms(percentile(values, 0.95)),
        "p99_ms": _ms(percentile(values, 0.99)), "max_ms": _ms(values[-1] if values else None),
        "mean_ms": _ms(sum(values) / len(values) if values else None),
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


class Line:
    """One virtual phone line: plays calls one after another, one request at a time."""

    __slots__ = ("call", "index", "sock", "sent", "chunks", "t0", "call_ok", "call_id")

    def __init__(self):
        self.call = None
        self.index = 0
        self.sock = None
        self.sent = 0
        self.chunks = []
        self.t0 = 0.0
        self.call_ok = True
        self.call_id = -1


def run(pool: list[list[Request]], port: int, concurrency: int, warmup: float, duration: float,
        reuse_pool: bool, watch_pids: list[int], think: float = 0.0, seed: int = 1,
        pg_database: str | None = None) -> dict:
    address = ("127.0.0.1", port)
    pauses = random.Random(seed)
    scheduled: list[tuple[float, int, Line]] = []  # (when, tie-breaker, line): paced calls only
    epoll = select.epoll()
    by_fd: dict[int, Line] = {}
    lines = [Line() for _ in range(concurrency)]
    next_call = 0
    pool_exhausted = False
    starts, ends = array("d"), array("d")
    labels_seen, oks = array("H"), array("b")
    errors: dict[str, int] = {}
    calls_started = calls_done = calls_ok = 0
    call_results: dict[int, bool] = {}

    clock = time.perf_counter
    t_begin = clock()
    t_window = t_begin + warmup
    t_end = t_window + duration

    def error(kind: str) -> None:
        errors[kind] = errors.get(kind, 0) + 1

    def new_call(line: Line) -> bool:
        nonlocal next_call, pool_exhausted, calls_started
        if clock() >= t_end:
            line.call = None
            return False
        if next_call >= len(pool):
            if not reuse_pool:
                pool_exhausted = True
                line.call = None
                return False
        line.call_id = next_call % len(pool) if reuse_pool else next_call
        line.call = pool[line.call_id]
        next_call += 1
        calls_started += 1
        line.index = 0
        line.call_ok = True
        return True

    def send(line: Line) -> None:
        line.chunks = []
        line.sent = 0
        line.t0 = clock()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        line.sock = sock
        code = sock.connect_ex(address)
        by_fd[sock.fileno()] = line
        # A connect that failed at once (refused) is reported by the next poll, not here, so a
        # server that is down makes the loop spin instead of recursing.
        line.sent = -code if code not in (0, errno.EINPROGRESS) else 0
        epoll.register(sock.fileno(), select.EPOLLOUT)

    def writable(line: Line) -> None:
        sock = line.sock
        err = -line.sent if line.sent < 0 else sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            finish(line, False, f"connect:{errno.errorcode.get(err, err)}")
            return
        data = line.call[line.index].data
        try:
            line.sent += sock.send(data[line.sent:] if line.sent else data)
        except BlockingIOError:
            return
        except OSError as exc:
            finish(line, False, f"send:{exc.__class__.__name__}")
            return
        if line.sent >= len(data):
            epoll.modify(sock.fileno(), select.EPOLLIN)

    def readable(line: Line) -> None:
        try:
            chunk = line.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as exc:
            finish(line, False, f"recv:{exc.__class__.__name__}")
            return
        if chunk:
            line.chunks.append(chunk)
            return
        response = b"".join(line.chunks)
        if response[9:12] != b"200":
            finish(line, False, f"status:{response[9:12].decode(errors='replace') or 'none'}")
            return
        head_end = response.find(b"\r\n\r\n")
        if head_end < 0 or line.call[line.index].marker not in response[head_end:]:
            finish(line, False, "content")
            return
        finish(line, True, None)

    def finish(line: Line, ok: bool, kind: str | None) -> None:
        nonlocal calls_done, calls_ok
        now = clock()
        sock = line.sock
        fd = sock.fileno()
        by_fd.pop(fd, None)
        try:
            epoll.unregister(fd)
        except (OSError, ValueError):
            pass
        sock.close()
        line.sock = None
        request = line.call[line.index]
        starts.append(line.t0)
        ends.append(now)
        labels_seen.append(request.label)
        oks.append(1 if ok else 0)
        if not ok:
            error(kind or "unknown")
            line.call_ok = False
        line.index += 1
        if line.index >= len(line.call):
            calls_done += 1
            calls_ok += line.call_ok
            call_results[line.call_id] = line.call_ok
            if not new_call(line):
                return
        if think > 0 and now < t_end:  # the caller listens before pressing the next key (not in the drain)
            heapq.heappush(scheduled, (now + pauses.expovariate(1.0 / think), id(line), line))
            return
        send(line)

    server_pids = set(watch_pids)
    snap_begin = CpuSnapshot()
    for line in lines:
        if new_call(line):
            if think > 0:
                heapq.heappush(scheduled, (t_begin + pauses.uniform(0, think), id(line), line))
            else:
                send(line)

    snap_window = snap_end = None
    deadline = t_end + DRAIN_TIMEOUT
    last_check = clock()
    while True:
        active = [line for line in lines if line.sock is not None]
        if not active and not scheduled:
            break
        now = clock()
        while scheduled and scheduled[0][0] <= now:
            send(heapq.heappop(scheduled)[2])
        if snap_window is None and now >= t_window:
            snap_window = CpuSnapshot()
        if snap_window is not None and snap_end is None and now >= t_end:
            snap_end = CpuSnapshot()
        if now > deadline:
            for line in active:
                line.call_ok = False
                error("drain-timeout")
                line.sock.close()
            break
        if now - last_check > 0.25:
            last_check = now
            for line in active:
                if now - line.t0 > REQUEST_TIMEOUT:
                    finish(line, False, "timeout")
        wait = 0.05 if not scheduled else max(0.0, min(0.05, scheduled[0][0] - now))
        for fd, events in epoll.poll(wait):
            line = by_fd.get(fd)
            if line is None:
                continue
            if events & select.EPOLLOUT:
                writable(line)
            elif events & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
                readable(line)
    t_finish = clock()
    snap_finish = CpuSnapshot()
    window_cpu = cpu_between(snap_window or snap_begin, snap_end or snap_finish, server_pids, pg_database)
    run_cpu = cpu_between(snap_begin, snap_finish, server_pids, pg_database)

    in_window = [i for i in range(len(starts)) if t_window <= ends[i] <= t_end]
    latencies = [ends[i] - starts[i] for i in in_window]
    per_label: dict[int, list[float]] = {}
    for i in in_window:
        per_label.setdefault(labels_seen[i], []).append(ends[i] - starts[i])
    window_errors = sum(1 for i in in_window if not oks[i])
    ticks = os.sysconf("SC_CLK_TCK")
    total_requests = len(starts)

    def per_request(kind: str) -> float:
        return round(run_cpu["ticks"][kind] / ticks / max(1, total_requests) * 1e6, 1)
    return {
        "concurrency": concurrency, "warmup_s": warmup, "duration_s": duration, "think_s": think,
        "requests": len(in_window), "rps": round(len(in_window) / duration, 1),
        "errors": window_errors, "errors_total": sum(errors.values()), "error_kinds": errors,
        **summarize(latencies),
        "per_label": {label: summarize(values) for label, values in per_label.items()},
        "calls_started": calls_started, "calls_done": calls_done, "calls_ok": calls_ok,
        "call_results": call_results,
        "requests_total": total_requests, "elapsed_total_s": round(t_finish - t_begin, 3),
        "drain_s": round(max(0.0, t_finish - t_end), 3),
        "pool_exhausted": pool_exhausted,
        # CPU in the window, in cores: the generator, the server (workers + master), PostgreSQL,
        # everything else on the machine; and per request over the whole run (warm-up and drain
        # included, as are their requests).
        "cores": {k: v for k, v in window_cpu.items() if k != "ticks"},
        "gen_cores": window_cpu["generator"],
        "other_cores": window_cpu["other"],
        "machine_busy": window_cpu["machine_busy"],
        "gen_cpu_us_per_req": per_request("generator"),
        "server_cpu_us_per_req": per_request("server") if watch_pids else None,
        "postgres_cpu_us_per_req": per_request("postgres"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plan", required=True)
    parser.add_argument("--mode", choices=("ours", "bare", "signed"), required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--pool-rate", type=float, default=3000.0,
                        help="ours: build enough fresh calls for this many requests/s (no call is replayed)")
    parser.add_argument("--phone-offset", type=int, default=0, help="index of the first caller ID")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--think", type=float, default=0.0,
                        help="mean pause (s, exponential) between a response and the call's next request")
    parser.add_argument("--watch-pid", type=int, action="append", default=[],
                        help="server process whose CPU time is reported per request")
    parser.add_argument("--pg-database", help="count the CPU of the PostgreSQL backends serving this database")
    parser.add_argument("--manifest", help="ours: write one JSON line per call started")
    parser.add_argument("--result", required=True)
    args = parser.parse_args(argv)

    with open(args.plan) as f:
        plan = json.load(f)
    labels: dict[str, int] = {}
    t0 = time.perf_counter()
    scenarios = plan["scenarios"]
    mean_steps = (sum(s["weight"] * len(s["steps"]) for s in scenarios) / sum(s["weight"] for s in scenarios))
    if args.mode == "ours":
        calls = int(args.pool_rate * (args.warmup + args.duration) / mean_steps) + 2 * args.concurrency + 50
    else:
        calls = max(256, 2 * args.concurrency)  # the floors store nothing: calls are replayed
    pool, manifest = build_pool(plan, args.mode, args.port, calls, args.phone_offset, args.seed, labels)
    build_s = time.perf_counter() - t0

    result = run(pool, args.port, args.concurrency, args.warmup, args.duration,
                 reuse_pool=args.mode != "ours", watch_pids=args.watch_pid, think=args.think, seed=args.seed,
                 pg_database=args.pg_database)
    names = {index: name for name, index in labels.items()}
    result["per_label"] = {names[k]: v for k, v in result["per_label"].items()}
    call_results = result.pop("call_results")
    result.update({"mode": args.mode, "pool_calls": len(pool), "pool_build_s": round(build_s, 2),
                   "mean_requests_per_call": round(mean_steps, 2)})
    if args.manifest and args.mode == "ours":
        with open(args.manifest, "w") as f:
            for index, entry in enumerate(manifest[:result["calls_started"]]):
                f.write(json.dumps({**entry, "ok": call_results.get(index, False)}) + "\n")
    with open(args.result, "w") as f:
        json.dump(result, f, indent=1)
    if result["pool_exhausted"]:
        print("loadgen: the pool of fresh calls ran out before the end: raise --pool-rate", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
