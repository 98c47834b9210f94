"""WebSockets: idle sockets one uvicorn process holds and its memory per socket; delivery
latency from a REST message POST (gunicorn) to the receiver's socket.

    python -m bench.scenarios.ws_sockets [--sockets 19000] [--clients 2] [--pairs 200] [--rate 20] [--duration 30]
    python -m bench.scenarios.ws_sockets --bare --sockets 1500 [--ws wsproto | --server granian]

Dedicated bench PostgreSQL/Redis (bench/harness/servers.py); figures: docs/benchmarks/realtime.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil

from bench.harness import servers
from bench.harness.common import BASE_DIR, percentile, write_result
from bench.harness.loadtest import Gunicorn, free_port

PY = sys.executable
NAME_PREFIX = "WS bench "
PASSWORD = "bench-password-2026"


# ------------------------------------------------------------------- seeding (in a child)


def seed(users: int, pairs: int, out: str) -> None:
    """``users`` users with one session and access token each (1 h); the first ``2 * pairs``
    are connected two by two.  Idempotent by count."""
    import django

    django.setup()
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from accounts.models import Session, User
    from accounts.tokens import hash_refresh_token, issue_access_token, make_refresh_token
    from connections.models import Connection, ConnectionStatus

    have = User.objects.filter(display_name__startswith=NAME_PREFIX).count()
    if have < users:
        password = make_password(PASSWORD)
        User.objects.bulk_create([User(phone=f"+1415{7000000 + i:07d}", password=password,
                                       display_name=f"{NAME_PREFIX}{i}") for i in range(have, users)],
                                 batch_size=5000)
    people = list(User.objects.filter(display_name__startswith=NAME_PREFIX).order_by("phone")[:users])
    now = timezone.now()
    sessions = []
    for user in people:
        session = Session(user=user, refresh_token_hash="", expires_at=now + timezone.timedelta(days=1))
        session.refresh_token_hash = hash_refresh_token(make_refresh_token(session.id, 0))
        sessions.append(session)
    Session.objects.bulk_create(sessions, batch_size=5000)
    tokens = [issue_access_token(user, session.id) for user, session in zip(people, sessions, strict=True)]
    links = []
    for i in range(pairs):
        a, b = people[2 * i].pk, people[2 * i + 1].pk
        low, high = min(a, b), max(a, b)
        links.append(Connection(user_low_id=low, user_high_id=high, requester_id=a, status=ConnectionStatus.ACCEPTED))
    Connection.objects.bulk_create(links, ignore_conflicts=True)
    conn_ids = {}
    for conn in Connection.objects.filter(user_low_id__in=[c.user_low_id for c in links]):
        conn_ids[(str(conn.user_low_id), str(conn.user_high_id))] = str(conn.pk)
    pair_rows = []
    for i in range(pairs):
        a, b = str(people[2 * i].pk), str(people[2 * i + 1].pk)
        pair_rows.append({"sender": tokens[2 * i], "receiver": tokens[2 * i + 1],
                          "connection": conn_ids[(min(a, b), max(a, b))]})
    Path(out).write_text(json.dumps({"tokens": tokens, "pairs": pair_rows}))


# --------------------------------------------------------------------------- the server


def raise_fd_limit() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


async def bare_app(scope, receive, send):
    """The server alone (``--bare``): accept, say hello, hold the socket; no Django, no Redis."""
    if scope["type"] != "websocket":
        return
    await receive()
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": json.dumps({"type": "hello"})})
    while (await receive())["type"] != "websocket.disconnect":
        pass


class Uvicorn:
    """The ASGI server under test: the project's uvicorn command, or (``--server granian``,
    needs ``pip install granian==2.8.9``) granian; ``bare`` serves ``bare_app`` instead of the project."""

    def __init__(self, env: dict[str, str], ws: str, server: str = "uvicorn", bare: bool = False,
                 app: str = "config.asgi:application"):
        from core.management.commands.serve import asgi_command

        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/ws/v1/"
        self.log = tempfile.NamedTemporaryFile(prefix="bench-uvicorn-", suffix=".log", delete=False)
        target = "bench.scenarios.ws_sockets:bare_app" if bare else app
        if server == "granian":
            cmd = [str(Path(PY).with_name("granian")), "--interface", "asgi", "--host", "127.0.0.1", "--port",
                   str(self.port), "--ws", "--backlog", "4096", target]
        else:
            cmd = [*asgi_command(PY, f"127.0.0.1:{self.port}", ws), "--backlog", "4096"]
            cmd[cmd.index("config.asgi:application")] = target
        self.proc = subprocess.Popen(cmd, cwd=BASE_DIR, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     preexec_fn=raise_fd_limit)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited: {Path(self.log.name).read_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.proc.kill()  # no orphan server left behind
                    raise RuntimeError("uvicorn did not answer in time") from None
                time.sleep(0.2)

    def memory(self) -> dict:
        """RSS and USS of the server's process tree (granian runs its workers as children)."""
        procs = [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(recursive=True)]
        infos = [p.memory_full_info() for p in procs]
        return {"rss": sum(i.rss for i in infos), "uss": sum(i.uss for i in infos)}

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# --------------------------------------------------------------------- socket clients


def hold_sockets(url: str, tokens: list[str], ready, release, results) -> None:
    """A client process: open one socket per token, report, hold them until released."""
    raise_fd_limit()
    from websockets.asyncio.client import connect

    async def main():
        gate = asyncio.Semaphore(100)
        opened, failed = [], 0

        async def one(token):
            nonlocal failed
            async with gate:
                try:
                    ws = await connect(url, additional_headers={"Authorization": f"Bearer {token}"},
                                       open_timeout=120, ping_interval=None, max_queue=4)
                    hello = json.loads(await asyncio.wait_for(ws.recv(), 120))
                    assert hello["type"] == "hello"
                    opened.append(ws)
                except Exception:
                    failed += 1

        started = time.monotonic()
        await asyncio.gather(*(one(t) for t in tokens))
        results.put({"opened": len(opened), "failed": failed, "seconds": time.monotonic() - started})
        ready.set()
        while not release.is_set():
            await asyncio.sleep(0.5)
        alive = sum(1 for ws in opened if ws.state.name == "OPEN")
        results.put({"alive_at_end": alive})
        for ws in opened:
            await ws.close()

    asyncio.run(main())


def open_idle(url: str, tokens: list[str], clients: int):
    """Spread the tokens over ``clients`` processes; wait until every one has opened its share."""
    ctx = multiprocessing.get_context("spawn")
    release = ctx.Event()
    results = ctx.Queue()
    procs, readies = [], []
    for index in range(clients):
        ready = ctx.Event()
        share = tokens[index::clients]
        proc = ctx.Process(target=hold_sockets, args=(url, share, ready, release, results), daemon=True)
        proc.start()
        procs.append(proc)
        readies.append(ready)
    for ready in readies:
        ready.wait(900)
    reports = [results.get(timeout=60) for _ in procs]
    return procs, release, results, reports


# -------------------------------------------------------------------------- latency


def measure_latency(api: str, ws_url: str, pairs: list[dict], rate: float, duration: float) -> dict:
    """Receivers on sockets; one sender thread posts messages at ``rate``/s round-robin over the pairs."""
    from websockets.sync.client import connect

    received: dict[str, float] = {}
    stop = threading.Event()
    lock = threading.Lock()

    def listen(token: str):
        with connect(ws_url, additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=60) as ws:
            json.loads(ws.recv(timeout=60))
            while not stop.is_set():
                try:
                    message = json.loads(ws.recv(timeout=0.5))
                except TimeoutError:
                    continue
                if message.get("type") == "message.new":
                    with lock:
                        received.setdefault(message["data"]["body"], time.perf_counter())

    listeners = [threading.Thread(target=listen, args=(p["receiver"],), daemon=True) for p in pairs]
    for thread in listeners:
        thread.start()
    time.sleep(3)  # listeners connected (they print nothing; the first posts would only wait)
    sent: dict[str, float] = {}
    errors = 0
    interval = 1.0 / rate
    started = time.perf_counter()
    n = 0
    while time.perf_counter() - started < duration:
        pair = pairs[n % len(pairs)]
        body = f"bench {n}"
        request = urllib.request.Request(f"{api}/api/v1/connections/{pair['connection']}/messages/",
                                         data=json.dumps({"body": body}).encode(), method="POST",
                                         headers={"Authorization": f"Bearer {pair['sender']}",
                                                  "Content-Type": "application/json"})
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                if response.status == 201:
                    sent[body] = t0
                else:
                    errors += 1
        except OSError:
            errors += 1
        n += 1
        time.sleep(max(0.0, started + n * interval - time.perf_counter()))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(received) < len(sent):
        time.sleep(0.2)
    stop.set()
    latencies = [(received[b] - t0) * 1000 for b, t0 in sent.items() if b in received]
    return {"messages": len(sent), "post_errors": errors, "delivered": len(latencies),
            "p50_ms": round(percentile(latencies, 50) or 0, 1), "p95_ms": round(percentile(latencies, 95) or 0, 1),
            "p99_ms": round(percentile(latencies, 99) or 0, 1), "max_ms": round(max(latencies, default=0), 1)}


# ------------------------------------------------------------------------------ main


def bare(args) -> int:
    """Memory per idle socket of the server alone, to compare servers and protocol implementations."""
    server = Uvicorn(dict(os.environ), args.ws, args.server, bare=True)
    try:
        warm_procs, warm_release, _q, _warm = open_idle(server.url, ["-"] * 50, 1)
        time.sleep(2)
        base = server.memory()
        procs, release, _results, reports = open_idle(server.url, ["-"] * args.sockets, args.clients)
        time.sleep(3)
        held = server.memory()
        release.set()
        warm_release.set()
        for proc in [*procs, *warm_procs]:
            proc.join(60)
    finally:
        server.stop()
    opened = sum(r["opened"] for r in reports)
    figures = {"idle_sockets_opened": opened, "connect_failures": sum(r["failed"] for r in reports),
               "rss_per_socket_kb": round((held["rss"] - base["rss"]) / max(1, opened) / 1024, 1),
               "uss_per_socket_kb": round((held["uss"] - base["uss"]) / max(1, opened) / 1024, 1)}
    label = "granian" if args.server == "granian" else f"uvicorn-{args.ws}"
    path = write_result(f"ws_sockets_bare_{label}", figures,
                        f"{label} serving a trivial ASGI app (accept, hello, hold): memory of the server's process "
                        f"tree after {args.sockets} idle sockets minus after 50", scale={"sockets": args.sockets})
    print(json.dumps(figures, indent=2))
    print(f"wrote {path}")
    return 0



def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sockets", type=int, default=19000)
    parser.add_argument("--clients", type=int, default=2, help="client processes holding the sockets")
    parser.add_argument("--pairs", type=int, default=200, help="connected pairs for the latency phase")
    parser.add_argument("--rate", type=float, default=20.0, help="messages per second in the latency phase")
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--ws", default="websockets-sansio", help="uvicorn's WebSocket protocol implementation")
    parser.add_argument("--no-latency", action="store_true", help="idle sockets only")
    parser.add_argument("--server", choices=["uvicorn", "granian"], default="uvicorn")
    parser.add_argument("--bare", action="store_true", help="the server alone with a trivial app")
    parser.add_argument("--seed-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seed_out:
        seed(args.sockets + 2 * args.pairs, args.pairs, args.seed_out)
        return 0
    if args.bare:
        return bare(args)

    servers.start()
    env = servers.env(RATE_LIMIT_USER="1000000/minute", ACCESS_TOKEN_TTL_S="7200", DB_POOL_MIN_SIZE="1",
                      DB_POOL_MAX_SIZE="10")
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # present at all (even empty) turns multiprocess mode on
    servers.migrate()
    out = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
    subprocess.run([PY, "-m", "bench.scenarios.ws_sockets", "--sockets", str(args.sockets), "--pairs",
                    str(args.pairs), "--seed-out", out], cwd=BASE_DIR, env=env, check=True)
    data = json.loads(Path(out).read_text())
    os.unlink(out)
    idle_tokens = data["tokens"][2 * args.pairs:]

    server = Uvicorn(env, args.ws)
    gunicorn = Gunicorn(env, workers=2)
    try:
        warm_procs, warm_release, _q, warm = open_idle(server.url, idle_tokens[:50], 1)
        time.sleep(2)
        base = server.memory()
        procs, release, results, reports = open_idle(server.url, idle_tokens[50:args.sockets], args.clients)
        opened = sum(r["opened"] for r in reports) + warm[0]["opened"]
        failed = sum(r["failed"] for r in reports)
        connect_s = max(r["seconds"] for r in reports)
        time.sleep(5)
        held = server.memory()
        per_socket_kb = (held["rss"] - base["rss"]) / max(1, opened - 50) / 1024
        per_socket_uss_kb = (held["uss"] - base["uss"]) / max(1, opened - 50) / 1024
        cpu_idle = psutil.Process(server.proc.pid).cpu_percent(interval=5.0)
        latency = {} if args.no_latency else measure_latency(gunicorn.url, server.url, data["pairs"], args.rate,
                                                             args.duration)
        release.set()
        warm_release.set()
        ends = [results.get(timeout=120) for _ in procs]
        alive = sum(e.get("alive_at_end", 0) for e in ends)
        for proc in [*procs, *warm_procs]:
            proc.join(60)
    finally:
        server.stop()
        gunicorn.stop()

    figures = {
        "idle_sockets_opened": opened, "connect_failures": failed, "alive_after_latency_phase": alive + 50,
        "connect_seconds": round(connect_s, 1), "connects_per_s": round((opened - 50) / connect_s, 1),
        "rss_base_mb": round(base["rss"] / 2**20, 1), "rss_held_mb": round(held["rss"] / 2**20, 1),
        "rss_per_socket_kb": round(per_socket_kb, 1), "uss_per_socket_kb": round(per_socket_uss_kb, 1),
        "server_cpu_percent_idle": cpu_idle,
        "latency": latency,
    }
    how = (f"One uvicorn process ({args.ws}) on the bench PostgreSQL/Redis; {args.clients} client processes "
           f"open {args.sockets} sockets (one user each, 100 handshakes in flight per client), held idle; memory is "
           f"the server's RSS/USS after them minus after 50 warm-up sockets.  Then {args.pairs} receivers on the "
           f"same server while gunicorn (2 workers) takes POST messages/ at {args.rate}/s for {args.duration} s; "
           "latency = receiver's message.new arrival minus the POST's start (both clocks on this machine).")
    name = "ws_sockets" if args.ws == "websockets-sansio" and not args.no_latency else f"ws_sockets_{args.ws}"
    path = write_result(name, figures, how, scale={"sockets": args.sockets, "ws": args.ws, "pairs": args.pairs,
                                                           "rate": args.rate, "duration_s": args.duration})
    print(json.dumps(figures, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
