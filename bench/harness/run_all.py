"""The whole benchmark suite at a stated scale, then docs/BENCHMARKS.md (``make bench``).

    make bench SCALE=2000 USERS=100 SPEEDUP=2.5 DURATION=30

Its steps and options: docs/benchmarks/README.md, "The whole suite".
"""

from __future__ import annotations

import argparse
import os
import sys

from bench.claims import app as claims
from bench.harness import capacity, profile, report, servers
from bench.harness.common import read_result


def ensure_scale(users: int) -> int:
    """Load ``seed_demo`` data until the bench database holds ``users`` seeded users."""
    have = int(servers.psql("SELECT count(*) FROM users WHERE display_name NOT LIKE 'Bench %'",
                            database=servers.DB_NAME) or 0)
    if have < users:
        print(f"seeding {users - have} users with seed_demo ...", flush=True)
        result = servers.manage("seed_demo", "--users", str(users - have), "--seed", "1", check=False)
        if result.returncode != 0:
            raise RuntimeError(f"seed_demo failed:\n{result.stderr[-3000:]}")
        print(result.stdout.strip().splitlines()[-3] if result.stdout.strip() else "", flush=True)
    servers.psql("VACUUM ANALYZE", database=servers.DB_NAME)  # no autovacuum inside a measured window
    return max(have, users)


def _costliest_task() -> str | None:
    """The mix's task whose endpoint costs the most app CPU per request alone (bench.claims.app endpoints)."""
    doc = read_result("endpoints")
    if not doc:
        return None
    by_endpoint = {endpoint: task for task, (endpoint, _rate) in claims.ENDPOINT_TASKS.items()}
    rows = {name: r for name, r in doc["figures"]["endpoints"].items() if name in by_endpoint and r.get("app_ms")}
    return by_endpoint[max(rows, key=lambda name: rows[name]["app_ms"])] if rows else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=2000, help="seeded users in the bench database")
    parser.add_argument("--users", type=int, default=100, help="simulated users of the mix run")
    parser.add_argument("--speedup", type=float, default=2.5)
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--skip", action="append", default=[], help="a step of bench.claims.app to skip")
    args = parser.parse_args(argv)
    os.environ.setdefault("BENCH_INSTANCE", "harness")  # servers of our own (bench/harness/servers.py)
    servers.start()
    servers.migrate()
    ensure_scale(args.scale)
    print("== mix", flush=True)
    print(claims.mix(users=args.users, speedup=args.speedup, duration=args.duration), flush=True)
    for step in ("floor", "endpoints", "pooling", "prepared", "cachalot", "replicas", "ratelimit", "caching", "micro",
                 "areas"):
        if step in args.skip:
            continue
        print(f"== {step}", flush=True)
        claims.STEPS[step]()
    if "profile" not in args.skip:
        print("== profile", flush=True)
        profile.main(["--duration", "20"])
        costliest = _costliest_task()
        if costliest:
            print(f"== profile of {costliest}", flush=True)
            profile.main(["--duration", "15", "--only", costliest, "--name", f"profile-{costliest}"])
    capacity.main([])
    report.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
