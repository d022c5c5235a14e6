"""Summaries of py-spy's raw (collapsed-stack) output: where a gunicorn worker spends its time.

py-spy records stacks like "frame;frame;...;leaf COUNT", each frame "function (path:line)".
From them: self time by function (the leaf), inclusive time of Voiceline's own functions, and
self time grouped by package (voiceline, sqlalchemy, werkzeug, ..., the standard library).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<path>[^()]*?)(?::(?P<line>\d+))?\)$")


def _parse_frame(frame: str) -> tuple[str, str]:
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip(), ""
    return match.group("func"), match.group("path")


def package_of(path: str) -> str:
    """voiceline, a third-party distribution's top-level package, or stdlib:<module>."""
    if "site-packages/" in path:
        rest = path.split("site-packages/", 1)[1]
        return rest.split("/", 1)[0].removesuffix(".py")
    if "/voiceline/" in f"/{path}":
        return "voiceline"
    if "/bench/" in path:
        return "bench"
    match = re.search(r"lib/python3\.\d+/(.+)$", path)
    if match:
        return "stdlib:" + match.group(1).split("/", 1)[0].removesuffix(".py")
    return path or "?"


def short_path(path: str) -> str:
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1]
    if "/voiceline/" in f"/{path}":
        return "voiceline/" + f"/{path}".split("/voiceline/", 1)[1]
    match = re.search(r"lib/python3\.\d+/(.+)$", path)
    return match.group(1) if match else path


def summarize(files: list[Path], top: int = 15) -> dict:
    self_time: Counter = Counter()
    inclusive: Counter = Counter()
    packages: Counter = Counter()
    total = idle = 0
    waits: Counter = Counter()
    for file in files:
        for raw in file.read_text(errors="replace").splitlines():
            stack, _, count = raw.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            total += n
            frames = [_parse_frame(f) for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
            if not frames:
                continue
            func, path = frames[-1]
            if path.endswith("gunicorn/workers/sync.py") and func.endswith("wait"):
                idle += n  # the worker waiting for a connection: not work
                total -= n
                continue
            names = [f for f, _ in frames]
            if any(f.endswith("close_graceful") for f in names):
                waits["closing the connection (gunicorn close_graceful: FIN, then wait for the client's)"] += n
            elif "psycopg" in path and func.split(".")[-1] in ("wait", "wait_c", "_wait", "wait_select", "wait_epoll"):
                waits["waiting for PostgreSQL (psycopg)"] += n
            elif path.endswith("gunicorn/util.py") and func == "write":
                waits["sending the response (gunicorn util.write)"] += n
            self_time[f"{func} ({short_path(path)})"] += n
            packages[package_of(path)] += n
            seen = set()
            for func, path in frames:
                if package_of(path) != "voiceline":
                    continue
                key = f"{func} ({short_path(path)})"
                if key not in seen:
                    seen.add(key)
                    inclusive[key] += n
    share = (lambda n: round(100.0 * n / total, 1)) if total else (lambda n: 0.0)
    return {
        "samples": total,
        "idle_samples": idle,
        "waits": [(k, share(v)) for k, v in waits.most_common()],
        "self": [(k, share(v)) for k, v in self_time.most_common(top)],
        "voiceline_inclusive": [(k, share(v)) for k, v in inclusive.most_common(top)],
        "packages": [(k, share(v)) for k, v in packages.most_common(top)],
    }
