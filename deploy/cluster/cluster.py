"""``make cluster`` / ``make cluster-stop``: the scale-out topology on loopback.

    python deploy/cluster/cluster.py start|status|stop [--wipe]

Ports, state directory and what runs: docs/cluster.md.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from deploy.cluster.topology import Topology, alive

ROOT = Path(os.environ.get("CLUSTER_DIR", Path(__file__).resolve().parent.parent.parent / ".data" / "cluster"))


def _default() -> Topology:
    pg = int(os.environ.get("CLUSTER_PG_PORT", 15432))
    redis = int(os.environ.get("CLUSTER_REDIS_PORT", 17001))
    return Topology(
        root=ROOT,
        pg_ports=[pg, pg + 1, pg + 2],
        redis_ports=[redis + i for i in range(6)],
        broker_port=redis + 9,
        app_ports=[8001, 8002, 8003],
        ws_ports=[int(os.environ.get("CLUSTER_WS_PORT", 8011)) + i for i in range(2)],
        nginx_port=int(os.environ.get("CLUSTER_NGINX_PORT", 8080)),
        workers_per_app=int(os.environ.get("CLUSTER_WORKERS_PER_APP", 2)),
    )


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "status"
    topology = Topology.load(ROOT) or _default()
    if command == "start":
        if any(alive(pid) for pid in topology.pids.values()):
            print("already running; `make cluster-stop` first\n")
            print(topology.describe())
            return 0
        topology.start()
        print(topology.describe())
        print(f"Try: curl {topology.nginx_url}/health/ready/     Stop: make cluster-stop")
    elif command == "stop":
        topology.stop()
        print("cluster stopped")
        if "--wipe" in argv:
            shutil.rmtree(ROOT, ignore_errors=True)
            print(f"deleted {ROOT}")
    elif command == "status":
        print(topology.describe())
        for name, pid in topology.pids.items():
            print(f"  {name:8} pid {pid:>7}  {'running' if alive(pid) else 'stopped'}")
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
