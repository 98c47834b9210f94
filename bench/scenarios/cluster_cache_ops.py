"""Cache operations on the loopback Redis Cluster vs one Redis: latency and client CPU per op.

    python -m bench.scenarios.cluster_cache_ops [--ops 3000]

What it times: docs/benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.bench")


def _time(label: str, ops: int, fn) -> dict:
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i in range(ops):
        fn(i)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    row = {"op": label, "us_per_op": round(wall / ops * 1e6, 1), "client_cpu_us_per_op": round(cpu / ops * 1e6, 1)}
    print(f"| {label} | {row['us_per_op']} | {row['client_cpu_us_per_op']} |", flush=True)
    return row


def main(argv=None) -> int:
    import django

    django.setup()
    from django.core.cache.backends.redis import RedisCache

    from core.cache.cluster import RedisClusterCache
    from deploy.cluster.topology import Topology, free_port
    from devtools import embedded

    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=3000)
    ops = parser.parse_args(argv).ops
    root = Path(tempfile.mkdtemp(prefix="crossings-bench-cache-"))
    topology = Topology(root=root)
    plain_port = free_port()
    try:
        for port in topology.redis_ports:
            topology.start_redis_node(port)
        topology.create_cluster()
        embedded.start_redis_server(root / "plain", {"port": str(plain_port), "bind": "127.0.0.1"})
        time.sleep(0.5)
        nodes = topology.redis_cluster_urls
        waiting = RedisClusterCache(nodes, {"KEY_PREFIX": "b", "OPTIONS": {"WAIT_REPLICAS": 1}})
        no_wait = RedisClusterCache(nodes, {"KEY_PREFIX": "b", "OPTIONS": {"WAIT_REPLICAS": 0}})
        plain = RedisCache(f"redis://127.0.0.1:{plain_port}", {"KEY_PREFIX": "b"})
        keys = [f"k{i}" for i in range(20)]
        print(f"{ops} ops each, one thread\n")
        print("| operation | us per op (wall) | client CPU us per op |\n| --- | ---: | ---: |")
        for cache in (waiting, plain):
            cache.set_many({k: "v" * 100 for k in keys})
        _time("cluster set, WAIT 1", ops, lambda i: waiting.set(f"s{i % 100}", "v" * 100))
        _time("cluster set, no WAIT", ops, lambda i: no_wait.set(f"s{i % 100}", "v" * 100))
        _time("plain Redis set", ops, lambda i: plain.set(f"s{i % 100}", "v" * 100))
        _time("cluster get", ops, lambda i: waiting.get(f"s{i % 100}"))
        _time("plain Redis get", ops, lambda i: plain.get(f"s{i % 100}"))
        _time("cluster get_many(20 keys, 3 nodes)", ops, lambda i: waiting.get_many(keys))
        _time("plain Redis get_many(20 keys)", ops, lambda i: plain.get_many(keys))
    finally:
        topology.stop_redis()
        with open(root / "plain" / "redis.pid") as fh:
            os.kill(int(fh.read().split()[0]), 15)
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
