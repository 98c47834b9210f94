"""WebSockets under delivery load: ``--users`` connected users (one socket each) on one ASGI
process while a publisher logs and publishes ``--rate`` events per second to random users of
them; delivery latency (event logged → client received), the server's CPU per delivered
event and its memory per socket.

    python -m bench.scenarios.ws_delivery [--users 10000] [--rate 1000] [--duration 60] [--clients 2]
        [--server-env KEY=VALUE ...] [--label NAME]

``make loadtest-ws USERS=… RATE=… DURATION=…`` runs it.  Dedicated bench PostgreSQL/Redis
(bench/harness/servers.py); figures: docs/benchmarks/realtime.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

import psutil

from bench.harness import servers
from bench.harness.common import BASE_DIR, percentile, write_result
from bench.scenarios.ws_sockets import Uvicorn, raise_fd_limit

PY = sys.executable
TICK_S = 0.01  # the publisher logs one batch per tick (a web process logs one per request)
SLOW_S = 0.05  # arrivals later than this are listed with their time (--gc-log PATH.slow) to match stalls


# ------------------------------------------------------------------ the publisher (child)


def publish(ids_file: str, rate: float, duration: float, out: str) -> None:
    """Log and publish ``rate`` message.new-shaped events per second to random users, in one
    transaction per tick (realtime.events.record, as the receivers do), for ``duration`` s."""
    import django

    django.setup()
    from realtime import events
    from realtime.events import Entry

    users = [uuid.UUID(u) for u in json.loads(Path(ids_file).read_text())]
    sender = uuid.uuid4()
    body = "bench message " + "x" * 60
    process = psutil.Process()
    cpu0 = process.cpu_times()
    started = time.perf_counter()
    published = 0
    ticks = 0
    late_ticks = 0
    while True:
        elapsed = time.perf_counter() - started
        if elapsed >= duration:
            break
        due = int(rate * min(duration, elapsed + TICK_S)) - published
        if due > 0:
            entries = [Entry(random.choice(users), "message.new",
                             {"message_id": str(uuid.uuid4()), "connection_id": str(sender), "sender_id": str(sender),
                              "body": body, "created_at": datetime.now().astimezone().isoformat()})
                       for _ in range(due)]
            events.record(entries)
            published += due
        ticks += 1
        wait = started + ticks * TICK_S - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        else:
            late_ticks += 1
    seconds = time.perf_counter() - started
    cpu1 = process.cpu_times()
    Path(out).write_text(json.dumps({
        "published": published, "seconds": seconds, "rate": published / seconds,
        "cpu_s": (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system), "late_ticks": late_ticks, "ticks": ticks,
    }))


# ----------------------------------------------------------------------- the clients


def clients_main(url: str, tokens: list[str], ready, go, release, results) -> None:
    """A client process: one socket per token; each socket timestamps every event it gets."""
    raise_fd_limit()
    from websockets.asyncio.client import connect

    async def main():
        gate = asyncio.Semaphore(100)
        opened: list = []
        failed = 0
        latencies: list[float] = []
        slow: list[tuple[float, float]] = []
        received = 0
        measuring = False

        async def read(ws):
            nonlocal received
            try:
                async for raw in ws:
                    now = time.time()
                    message = json.loads(raw)
                    if message.get("type") == "message.new" and measuring:
                        received += 1
                        latency = now - datetime.fromisoformat(message["at"]).timestamp()
                        latencies.append(latency)
                        if latency > SLOW_S:
                            slow.append((round(now, 3), round(latency * 1000, 1)))
            except Exception:  # closed at the end
                pass

        async def one(token):
            nonlocal failed
            async with gate:
                try:
                    ws = await connect(url, additional_headers={"Authorization": f"Bearer {token}"},
                                       open_timeout=120, ping_interval=None, max_queue=16)
                    hello = json.loads(await asyncio.wait_for(ws.recv(), 120))
                    assert hello["type"] == "hello"
                    opened.append(ws)
                except Exception:
                    failed += 1

        started = time.monotonic()
        await asyncio.gather(*(one(t) for t in tokens))
        readers = [asyncio.ensure_future(read(ws)) for ws in opened]
        # Thousands of sockets in one client process: its own full collections would stall
        # its readers for hundreds of ms and show as delivery latency (a phone holds one).
        gc.collect()
        gc.freeze()
        results.put({"opened": len(opened), "failed": failed, "seconds": time.monotonic() - started})
        ready.set()
        while not go.is_set():
            await asyncio.sleep(0.1)
        measuring = True
        while not release.is_set():
            await asyncio.sleep(0.2)
        alive = sum(1 for ws in opened if ws.state.name == "OPEN")
        results.put({"received": received, "latencies": latencies, "alive_at_end": alive, "slow": slow})
        for ws in opened:
            await ws.close()
        for task in readers:
            task.cancel()

    asyncio.run(main())


def start_clients(url: str, tokens: list[str], clients: int):
    ctx = multiprocessing.get_context("spawn")
    go, release, results = ctx.Event(), ctx.Event(), ctx.Queue()
    procs, readies = [], []
    for index in range(clients):
        ready = ctx.Event()
        proc = ctx.Process(target=clients_main, args=(url, tokens[index::clients], ready, go, release, results),
                           daemon=True)
        proc.start()
        procs.append(proc)
        readies.append(ready)
    for ready in readies:
        ready.wait(1200)
    reports = [results.get(timeout=60) for _ in procs]
    return procs, go, release, results, reports


def server_delivery_histogram(port: int) -> dict[str, float]:
    """The server's own crossings_ws_delivery_seconds (event logged -> sent on the socket), by bucket."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        text = response.read().decode()
    buckets = {}
    for line in text.splitlines():
        if line.startswith("crossings_ws_delivery_seconds_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[le] = float(line.rsplit(" ", 1)[1])
    return buckets


def share_within(buckets: dict[str, float], seconds: str) -> float | None:
    total = buckets.get("+Inf")
    return round(100 * buckets.get(seconds, 0.0) / total, 1) if total else None


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


# ------------------------------------------------------------------------------ main


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=10000, help="connected users, one socket each")
    parser.add_argument("--rate", type=float, default=1000.0, help="events published per second")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of publishing")
    parser.add_argument("--clients", type=int, default=2, help="client processes holding the sockets")
    parser.add_argument("--ws", default="websockets-sansio")
    parser.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment of the ASGI server (to compare settings)")
    parser.add_argument("--gc-log", metavar="PATH",
                        help="log the server's full garbage collections (pauses), late arrivals to PATH.slow")
    parser.add_argument("--deflate", action="store_true",
                        help="leave uvicorn's permessage-deflate on (off as deployed: ~46 KB per socket)")
    parser.add_argument("--label", default="", help="suffix of the result file name")
    parser.add_argument("--trace", metavar="PREFIX", help="tracemalloc snapshots (bench/scenarios/ws_traced.py) "
                        "after the warm-up sockets and after all, to PREFIX.1 and PREFIX.2")
    parser.add_argument("--publish", nargs=3, metavar=("IDS", "RATE", "DURATION"), help=argparse.SUPPRESS)
    parser.add_argument("--publish-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.publish:
        publish(args.publish[0], float(args.publish[1]), float(args.publish[2]), args.publish_out)
        return 0

    import jwt

    servers.start()
    env = servers.env(RATE_LIMIT_USER="1000000/minute", ACCESS_TOKEN_TTL_S="7200", DB_POOL_MIN_SIZE="1",
                      DB_POOL_MAX_SIZE="10")
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # present at all (even empty) turns multiprocess mode on
    servers.migrate()
    seed_out = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
    subprocess.run([PY, "-m", "bench.scenarios.ws_sockets", "--sockets", str(args.users), "--pairs", "0",
                    "--seed-out", seed_out], cwd=BASE_DIR, env=env, check=True)
    tokens = json.loads(Path(seed_out).read_text())["tokens"]
    os.unlink(seed_out)
    user_ids = [jwt.decode(t, options={"verify_signature": False})["sub"] for t in tokens]
    ids_file = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
    Path(ids_file).write_text(json.dumps(user_ids))

    server_env = dict(env)
    if not args.deflate:
        server_env["UVICORN_WS_PER_MESSAGE_DEFLATE"] = "false"  # as deployed (docs/realtime.md)
    for item in args.server_env:
        key, _, value = item.partition("=")
        server_env[key] = value
    if args.trace:
        server_env["WS_TRACE_OUT"] = args.trace
    if args.gc_log:
        server_env["WS_GC_LOG"] = args.gc_log
    server = Uvicorn(server_env, args.ws, app="bench.scenarios.ws_traced:application" if args.trace or args.gc_log
                     else "config.asgi:application")
    publish_out = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
    try:
        warm = start_clients(server.url, tokens[:50], 1)
        time.sleep(2)
        base = server.memory()
        if args.trace:
            os.kill(server.proc.pid, signal.SIGUSR1)
        procs, go, release, results, reports = start_clients(server.url, tokens[50:], args.clients)
        opened = sum(r["opened"] for r in reports) + warm[4][0]["opened"]
        time.sleep(5)
        held = server.memory()
        if args.trace:
            os.kill(server.proc.pid, signal.SIGUSR1)
        idle_cpu0, idle_t0 = cpu_seconds(server.proc.pid), time.perf_counter()
        time.sleep(10)
        idle_cpu_per_s = (cpu_seconds(server.proc.pid) - idle_cpu0) / (time.perf_counter() - idle_t0)

        go.set()
        warm[1].set()
        load0 = os.getloadavg()[0]
        cpu0, t0 = cpu_seconds(server.proc.pid), time.perf_counter()
        clients_cpu0 = sum(cpu_seconds(p.pid) for p in procs)
        subprocess.run([PY, "-m", "bench.scenarios.ws_delivery", "--publish", ids_file, str(args.rate),
                        str(args.duration), "--publish-out", publish_out], cwd=BASE_DIR, env=env, check=True)
        pub = json.loads(Path(publish_out).read_text())
        expected = pub["published"]

        # Let the last events arrive (bounded): the server's CPU falls back to idle when done.
        settle_deadline = time.monotonic() + 30
        last = cpu_seconds(server.proc.pid)
        while time.monotonic() < settle_deadline:
            time.sleep(1.0)
            now = cpu_seconds(server.proc.pid)
            if now - last < 2 * idle_cpu_per_s + 0.02:
                break
            last = now
        cpu1, t1 = cpu_seconds(server.proc.pid), time.perf_counter()
        clients_cpu = sum(cpu_seconds(p.pid) for p in procs) - clients_cpu0
        try:
            histogram = server_delivery_histogram(server.port)
        except OSError:
            histogram = {}
        load1 = os.getloadavg()[0]
        release.set()
        warm[2].set()
        ends = [results.get(timeout=300) for _ in procs]
        warm_end = warm[3].get(timeout=300)
        for proc in [*procs, *warm[0]]:
            proc.join(60)
    finally:
        server.stop()
        for path in (ids_file, publish_out):
            Path(path).unlink(missing_ok=True)

    ends.append(warm_end)
    latencies = [ms * 1000 for e in ends for ms in e["latencies"]]
    if args.gc_log:
        slow = sorted(item for e in ends for item in e["slow"])
        Path(args.gc_log + ".slow").write_text("".join(f"{at:.3f} {ms}ms\n" for at, ms in slow))
    received = sum(e["received"] for e in ends)
    cpu_s = cpu1 - cpu0
    wall = t1 - t0
    net_cpu = cpu_s - idle_cpu_per_s * wall
    figures = {
        "users_connected": opened, "connect_failures": sum(r["failed"] for r in reports),
        "alive_at_end": sum(e["alive_at_end"] for e in ends),
        "rate_target": args.rate, "rate_published": round(pub["rate"], 1), "events_published": expected,
        "events_delivered": received, "publisher_late_ticks": pub["late_ticks"],
        "publisher_cpu_ms_per_event": round(pub["cpu_s"] * 1000 / max(1, expected), 3),
        "p50_ms": round(percentile(latencies, 50) or 0, 1), "p95_ms": round(percentile(latencies, 95) or 0, 1),
        "p99_ms": round(percentile(latencies, 99) or 0, 1), "max_ms": round(max(latencies, default=0), 1),
        "server_cpu_percent_publishing": round(100 * cpu_s / wall, 1),
        "server_cpu_percent_idle": round(100 * idle_cpu_per_s, 1),
        "server_cpu_ms_per_event": round(cpu_s * 1000 / max(1, received), 3),
        "server_cpu_ms_per_event_net_of_idle": round(net_cpu * 1000 / max(1, received), 3),
        "rss_base_mb": round(base["rss"] / 2**20, 1), "rss_held_mb": round(held["rss"] / 2**20, 1),
        "rss_per_socket_kb": round((held["rss"] - base["rss"]) / max(1, opened - 50) / 1024, 1),
        "uss_per_socket_kb": round((held["uss"] - base["uss"]) / max(1, opened - 50) / 1024, 1),
        "server_sent_within_s_percent": {le: share_within(histogram, le) for le in ("0.01", "0.1", "1.0", "5.0")},
        "clients_cpu_percent_publishing": round(100 * clients_cpu / wall, 1),
        "load_average_1m": [round(load0, 2), round(load1, 2)],
    }
    how = (f"One uvicorn process ({args.ws}, the command `manage.py serve` runs) on the bench PostgreSQL/Redis; "
           f"{args.clients} client processes hold one socket per user for {args.users} seeded users.  A publisher "
           f"process logs and publishes message.new-shaped events (realtime.events.record: seq allocation, log "
           f"insert, commit, pipelined PUBLISH) to random users at {args.rate}/s in one transaction per "
           f"{int(TICK_S * 1000)} ms tick for {args.duration} s.  Latency = client arrival minus the event's "
           "logged time (`at`, taken before the insert), one clock.  Server CPU = its process CPU time from the "
           "first publish until deliveries settle, per event received; 'net of idle' subtracts the idle rate "
           "(pings, heartbeats) measured for 10 s before.  Memory = RSS/USS after all sockets minus after 50."
           + ("  permessage-deflate on." if args.deflate else "  permessage-deflate off (as deployed).")
           + (f"  Server environment: {' '.join(args.server_env)}." if args.server_env else ""))
    name = "ws_delivery" + (f"_{args.label}" if args.label else "")
    path = write_result(name, figures, how, scale={"users": args.users, "rate": args.rate, "duration_s": args.duration,
                                                   "clients": args.clients, "server_env": args.server_env,
                                                   "deflate": args.deflate})
    print(json.dumps(figures, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
