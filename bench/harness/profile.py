"""Where the app's CPU goes under the mix: py-spy on gunicorn, stacks grouped by component.

    python -m bench.harness.profile [--users 60 --speedup 4 --duration 20]

How it samples, its options and results: docs/benchmarks/README.md, "The profile".
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter

from bench.harness.common import RESULTS_DIR, write_result
from bench.harness.loadtest import loadtest

# (label, substring of a frame) in priority order for the innermost frame's package.
SELF_COMPONENTS = [
    ("prometheus (django-prometheus, prometheus_client)", ("django_prometheus/", "prometheus_client/")),
    ("psycopg / libpq", ("psycopg/", "psycopg_pool/", "psycopg_binary")),
    ("redis client (redis-py, django-redis)", ("/redis/", "django_redis/")),
    ("django-cachalot", ("cachalot/",)),
    ("DRF", ("rest_framework/",)),
    ("Django ORM", ("django/db/",)),
    ("Django (other)", ("django/",)),
    ("PyJWT", ("/jwt/",)),
    ("gunicorn", ("gunicorn/",)),
    ("json/orjson", ("orjson", "json/")),
]
OUR_APPS = ("accounts", "locations", "crossings", "connections", "stories", "analytics", "config", "core", "bench")
INCLUSIVE = [
    ("prometheus middleware", "django_prometheus/middleware"),
    ("django-prometheus (middleware, db and cache wrappers)", "django_prometheus/"),
    ("authentication (token decode)", "accounts/authentication.py"),
    ("rate limiting", "core/api/throttling.py"),
    ("db router", "core/db/router.py"),
    ("ORM SQL compilation", "django/db/models/sql/compiler.py"),
    ("database round trips (cursor execute)", "django/db/backends/utils.py"),
    ("cache (redis client)", "/redis/"),
    ("serializers (DRF)", "rest_framework/serializers.py"),
    ("rendering (DRF/orjson)", "rest_framework/response.py"),
    ("gzip middleware", "django/middleware/gzip.py"),
    ("sessions/CSRF/messages middleware", "django/contrib/sessions/middleware.py"),
]
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def _file(frame: str) -> str:
    """The frame's file as an absolute-looking path, so that "/redis/" matches "redis/client.py"."""
    m = _FRAME.match(frame.strip())
    path = m.group("file") if m else frame
    return path if path.startswith(("/", "<")) else f"/{path}"


def classify_self(frame: str) -> str:
    path = _file(frame)
    for label, needles in SELF_COMPONENTS:
        if any(n in path for n in needles):
            return label
    for app in OUR_APPS:
        if f"/{app}/" in path:
            return f"ours: {app}"
    if "python3" in path or path.startswith("<") or path.count("/") == 1:
        return "Python stdlib / interpreter"
    return "other"


def aggregate(lines: list[str]) -> dict:
    selfs: Counter = Counter()
    inclusive: Counter = Counter()
    functions: Counter = Counter()
    ours: Counter = Counter()
    total = imports = 0
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        # py-spy's first frames name the process ("process 123:<cmdline>"): not code.
        frames = [f for f in stack.split(";") if not f.startswith("process ")] or ["<no Python frame>"]
        if any("importlib._bootstrap" in f for f in frames):
            imports += n  # a worker's first requests import lazily: warm-up, not the steady state
            continue
        total += n
        selfs[classify_self(frames[-1])] += n
        functions[frames[-1].strip()] += n
        for frame in dict.fromkeys(f.strip() for f in frames):  # inclusive, each frame once per stack
            path = _file(frame)  # our middleware wraps every request: not informative here
            in_app = any(f"/{a}/" in path for a in OUR_APPS if a != "bench")
            if "core/observability/middleware.py" not in path and in_app:
                ours[frame] += n
        joined = ";".join(_file(f) for f in frames)
        for label, needle in INCLUSIVE:
            if needle in joined:
                inclusive[label] += n
    if not total:
        return {"samples": 0, "import_samples_left_out": imports}
    return {
        "samples": total, "import_samples_left_out": imports,
        "self_by_component": {k: round(v / total, 3) for k, v in selfs.most_common()},
        "inclusive": {k: round(v / total, 3) for k, v in inclusive.most_common()},
        "top_functions_self": {k: round(v / total, 3) for k, v in functions.most_common(12)},
        "top_functions_ours_inclusive": {k: round(v / total, 3) for k, v in ours.most_common(12)},
    }


def _reaggregate(name: str) -> int:
    path, raw = RESULTS_DIR / f"{name}.json", RESULTS_DIR / f"{name}.txt"
    doc = json.loads(path.read_text())
    doc["figures"] = {**aggregate(raw.read_text().splitlines()), "run": doc["figures"].get("run")}
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=60)
    parser.add_argument("--speedup", type=float, default=4)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--only", default="", help="profile one task of the mix (BENCH_ONLY), e.g. messages")
    parser.add_argument("--name", default="profile")
    parser.add_argument("--reaggregate", action="store_true",
                        help="recompute the figures from the raw stacks of the last run (no new run)")
    args = parser.parse_args(argv)
    if args.reaggregate:
        return _reaggregate(args.name)
    os.environ.setdefault("BENCH_INSTANCE", "harness")  # servers of our own (bench/harness/servers.py)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    raw = RESULTS_DIR / f"{args.name}.txt"
    raw.unlink(missing_ok=True)
    doc = loadtest(name=f"{args.name}-run", users=args.users, duration=args.duration, speedup=args.speedup,
                   login="token", profile_out=str(raw), locust_env={"BENCH_ONLY": args.only} if args.only else None)
    lines = raw.read_text().splitlines() if raw.exists() else []
    figures = aggregate(lines)
    figures["run"] = {"requests": doc["figures"]["overall"]["requests"],
                      "app_ms": doc["figures"].get("cpu_ms_per_request", {}).get("app")}
    only = f" --only {args.only}" if args.only else ""
    write_result(args.name, figures, f"python -m bench.harness.profile --users {args.users} --speedup {args.speedup} "
                 f"--duration {args.duration}{only}: py-spy record --subprocesses --gil --rate 200 on gunicorn "
                 f"during the {'task ' + args.only if args.only else 'mix'}")
    for label, share in figures.get("self_by_component", {}).items():
        print(f"{share * 100:5.1f} %  {label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
