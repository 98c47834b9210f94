"""What one realtime PUBLISH costs the Redis servers: the single (dedicated) pub/sub Redis the
WebSocket layer uses, against classic PUBLISH on the loopback Redis Cluster (3 masters + 3
replicas, Redis 6.2), where every message is broadcast over the cluster bus to every node.

    python -m bench.scenarios.ws_pubsub_cost [--messages 50000]

Starts its own Redis servers (deploy/cluster/topology.py) in a temporary directory; one
subscriber listens on the channel on each side, as an ASGI instance would.  Figures:
docs/benchmarks/realtime.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis

from bench.harness.common import write_result
from deploy.cluster.topology import Topology

PAYLOAD = json.dumps({"k": "ev", "t": 0.0, "peer": None, "type": "message.new", "seq": 1, "at": "x" * 32,
                      "data": {"message_id": "m" * 36, "connection_id": "c" * 36, "sender_id": "s" * 36,
                               "body": "b" * 80, "created_at": "x" * 32}}).encode()


def cpu_s(port: int) -> float:
    info = redis.Redis(port=port).info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def subscribe(client, channel: str, counter: list[int], stop: threading.Event) -> threading.Thread:
    pubsub = client.pubsub()
    pubsub.subscribe(channel)

    def run():
        while not stop.is_set():
            for message in pubsub.listen():
                if message["type"] == "message":
                    counter[0] += 1
                if stop.is_set():
                    return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def measure(publisher, ports: list[int], channel: str, messages: int, counter: list[int]) -> dict:
    before = {port: cpu_s(port) for port in ports}
    started = time.perf_counter()
    for start in range(0, messages, 1000):  # pipelined by 1000, as realtime.bus.publish does
        pipe = publisher.pipeline(transaction=False)
        for _ in range(min(1000, messages - start)):
            pipe.publish(channel, PAYLOAD)
        pipe.execute()
    seconds = time.perf_counter() - started
    deadline = time.monotonic() + 60
    while counter[0] < messages and time.monotonic() < deadline:
        time.sleep(0.1)
    spent = {port: cpu_s(port) - before[port] for port in ports}
    return {"messages": messages, "received": counter[0], "publish_seconds": round(seconds, 2),
            "redis_cpu_us_per_publish_total": round(1e6 * sum(spent.values()) / messages, 2),
            "redis_cpu_us_per_publish_by_node": {str(p): round(1e6 * s / messages, 2) for p, s in spent.items()}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=50000)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="ws-pubsub-"))
    topology = Topology(root=root)
    try:
        topology.start_redis()
        channel = "crossings:rt:u:00000000-0000-0000-0000-000000000001"
        stop = threading.Event()

        single = redis.Redis(port=topology.broker_port)
        single_count = [0]
        subscribe(single, channel, single_count, stop)
        time.sleep(0.5)
        dedicated = measure(single, [topology.broker_port], channel, args.messages, single_count)

        # Classic PUBLISH may go to any node (redis-py's cluster pipeline refuses it): to a master.
        cluster = redis.Redis(port=topology.redis_masters()[0])
        cluster_count = [0]
        # A subscriber on one node, as an ASGI instance would hold (classic pub/sub: any node).
        subscribe(redis.Redis(port=topology.redis_ports[1]), channel, cluster_count, stop)
        time.sleep(0.5)
        broadcast = measure(cluster, topology.redis_ports, channel, args.messages, cluster_count)
        stop.set()
    finally:
        topology.stop_redis()
        time.sleep(1)
        shutil.rmtree(root, ignore_errors=True)
    figures = {"dedicated_redis": dedicated, "redis_cluster_classic_publish": broadcast,
               "load_average_1m": round(os.getloadavg()[0], 2)}
    how = (f"{args.messages} PUBLISHes of a {len(PAYLOAD)}-byte message.new envelope, pipelined by 1 000, with one "
           "subscriber; Redis CPU = used_cpu_sys + used_cpu_user (INFO cpu) of each server before/after.  "
           "Dedicated: one Redis 6.2 (the broker of deploy/cluster).  Cluster: the 3+3 loopback Redis Cluster "
           "(6.2), classic PUBLISH to one master, the subscriber on another node.")
    path = write_result("ws_pubsub_cost", figures, how, scale={"messages": args.messages})
    print(json.dumps(figures, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
