"""Load through nginx on the loopback scale-out cluster: the docs/load-model.md mix, CPU per tier.

    make loadtest CLUSTER=1  # or python -m bench.harness.cluster_load --users 200 --duration 30

How it works, options and results: docs/benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.harness.common import BASE_DIR, RESULTS_DIR, write_result
from bench.harness.cpu import pid_from_file
from bench.harness.loadtest import PY, markdown, run_locust
from deploy.cluster.topology import Topology


def _prepare_users(topology: Topology, count: int) -> str:
    out = topology.root / "users.json"
    result = subprocess.run([PY, "-m", "bench.harness.prepare", "--users", str(count), "--out", str(out), "--tokens"],
                            cwd=BASE_DIR, env=topology.app_env(), capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"bench.harness.prepare failed:\n{result.stderr[-4000:]}")
    return str(out)


def _cpu_pids(topology: Topology) -> dict[str, list[int]]:
    return {
        "app": [topology.pids[f"app{i + 1}"] for i in range(len(topology.app_ports))],
        "db": [pid_from_file(topology.pgdata(i) / "postmaster.pid") for i in range(len(topology.pg_ports))],
        "db_primary": [pid_from_file(topology.pgdata(0) / "postmaster.pid")],
        "db_replicas": [pid_from_file(topology.pgdata(i) / "postmaster.pid") for i in range(1, len(topology.pg_ports))],
        "redis": [topology.redis_pid(port) for port in topology.redis_ports],
        "lb": [topology.pids["nginx"]],
    }


def _seed(topology: Topology, users: int) -> None:
    """``seed_demo`` data (crossings, connections, messages, stories) for ``users`` users."""
    result = subprocess.run([PY, "manage.py", "seed_demo", "--users", str(users), "--seed", "1"], cwd=BASE_DIR,
                            env=topology.app_env(), capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"seed_demo failed:\n{result.stderr[-4000:]}")


def run(*, name: str, users: int, duration: float, speedup: float, workers: int, seed_users: int = 0) -> dict:
    root = Path(tempfile.mkdtemp(prefix="crossings-bench-cluster-"))
    topology = Topology(root=root, workers_per_app=workers)
    try:
        topology.start(celery=True)
        if seed_users:
            _seed(topology, seed_users)
        users_file = _prepare_users(topology, max(users, 2))
        topology.sql(0, "CHECKPOINT")
        figures = run_locust(topology.nginx_url, users, duration, speedup, ["MobileUser"], users_file,
                             _cpu_pids(topology), "api", {"BENCH_REDIS_URL": ""})
    finally:
        topology.stop()
        shutil.rmtree(root, ignore_errors=True)
    scale = {"users": users, "speedup": speedup, "target_rate_per_s": round(users * 0.10117 * speedup, 1),
             "topology": f"nginx -> 3 gunicorn x {workers} workers; PG primary + 2 streaming replicas; "
                         "Redis Cluster 3+3; Celery worker + beat", "classes": ["MobileUser"],
             "seed_demo_users": seed_users}
    how = (f"python -m bench.harness.cluster_load --users {users} --duration {duration} --speedup {speedup} "
           f"--workers {workers} --seed-users {seed_users} --name {name}")
    path = write_result(name, figures, how, scale)
    path.with_suffix(".md").write_text(markdown(name, figures, scale))
    return json.loads(path.read_text())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--speedup", type=float, default=2)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per instance")
    parser.add_argument("--seed-users", type=int, default=0, help="load seed_demo data for this many users first")
    parser.add_argument("--name", default="cluster-mix")
    args = parser.parse_args(argv)
    doc = run(name=args.name, users=args.users, duration=args.duration, speedup=args.speedup, workers=args.workers,
              seed_users=args.seed_users)
    print(markdown(args.name, doc["figures"], doc["scale"]))
    print(f"written: {RESULTS_DIR / (args.name + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
