"""Cross-check of the framework floor: app CPU per request under gunicorn, closed loop.

    python -m bench.scenarios.floor_closed_loop [--pings] [--reads] [--wsgi]

How it measures and all options: docs/benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import orjson
import psutil


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(port: int, path: str, body: bytes | None = None, headers: dict | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST" if body is not None else "GET", path, body=body, headers=headers or {})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def measure(path: str, requests: int, clients: int, workers: int, make_request=None,
            app: str = "config.wsgi:application", ready_path: str = "/health/") -> dict:
    """CPU per request of ``path``; ``make_request(client, i)`` returns (body, headers) for a POST."""
    port = _free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.bench", "BENCH_FLOOR_VIEWS": "1",
           "WEB_CONCURRENCY": str(workers),
           "RATE_LIMIT_USER": "1000000/minute"}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", app, "-c", "deploy/gunicorn.conf.py",
         "--bind", f"127.0.0.1:{port}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _get(port, ready_path) == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer 200 on {path}")
            time.sleep(0.2)
        warm = 200
        for i in range(warm):  # warm every worker
            _call(port, path, make_request, 0, i)
        tree = [psutil.Process(server.pid), *psutil.Process(server.pid).children(recursive=True)]

        def cpu() -> float:
            return sum(sum(proc.cpu_times()[:2]) for proc in tree)

        per_client = requests // clients
        errors = []

        def loop(client: int):
            for i in range(per_client):
                if _call(port, path, make_request, client, warm + i) not in (200, 201):
                    errors.append(1)

        threads = [threading.Thread(target=loop, args=(client,)) for client in range(clients)]
        cpu0, t0 = cpu(), time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed, used = time.perf_counter() - t0, cpu() - cpu0
        served = per_client * clients
        return {"path": path, "requests": served, "errors": len(errors), "clients": clients, "workers": workers,
                "req_per_s": round(served / elapsed), "app_cpu_ms_per_request": round(used / served * 1000, 3)}
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def _call(port, path, make_request, client, i) -> int:
    if make_request is None:
        return _get(port, path)
    body, headers = make_request(client, i)
    path = headers.pop("X-Bench-Path", path)  # a per-client path (e.g. another user's profile)
    return _get(port, path, body, headers)


def measure_pings(requests: int, clients: int, workers: int) -> dict:
    """POST /api/v1/locations/ with one ping per request: a walk at 1.4 m/s, a ping every 30 s."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.bench")
    django.setup()
    from accounts import services
    from accounts.models import User

    users, tokens = [], []
    for client in range(clients):
        user = User.objects.create_user(f"+1202{5559000 + client:07d}", None, display_name=f"bench {client}")
        users.append(user)
        tokens.append(services.open_session(user)[1])
    start = datetime.now(UTC) - timedelta(hours=23)
    step = max(1.0, 23 * 3600 / (requests // clients + 400))  # stay inside the retention window

    def make_request(client: int, i: int):
        ping = {"lat": 52.5 + client * 0.01 + i * 3e-6, "lng": 13.4,
                "recorded_at": (start + timedelta(seconds=i * step)).isoformat()}
        return orjson.dumps({"pings": [ping]}), {"Authorization": f"Bearer {tokens[client]}",
                                                  "Content-Type": "application/json"}

    try:
        return measure("/api/v1/locations/", requests, clients, workers, make_request)
    finally:
        for user in users:
            user.delete()


READS = {
    "crossings": "/api/v1/crossings/",
    "connections": "/api/v1/connections/?status=accepted",
    "feed": "/api/v1/stories/feed/",
    "profile": "/api/v1/users/{other}/",
    "me": "/api/v1/me/",
}


def measure_reads(requests: int, clients: int, workers: int) -> list[dict]:
    """The cacheable reads of the load model, each alone, for viewers with a month-like
    neighbourhood (12 crossings, 6 connections, 6 live stories): after the warm-up every
    read is a cache hit, so this is the app CPU of a cached read."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.bench")
    django.setup()
    from accounts import services
    from accounts.models import User
    from tests.factories import make_connection, make_crossing, make_story

    made, viewers = [], []
    for client in range(clients):
        def new(n, client=client):
            user = User.objects.create_user(f"+1202{5558000 + client * 20 + n:07d}", None,
                                            display_name=f"bench {client}.{n}")
            made.append(user)
            return user

        viewer, others = new(0), [new(n) for n in range(1, 13)]
        for n, other in enumerate(others):
            make_crossing(viewer, other, times=1 + n % 3)
            if n < 6:
                make_connection(viewer, other)
                make_story(other)
        viewers.append((viewer, others[0], services.open_session(viewer)[1]))
    try:
        results = []
        for name, template in READS.items():
            def make_request(client: int, i: int, template=template):
                _viewer, other, token = viewers[client]
                return None, {"Authorization": f"Bearer {token}", "X-Bench-Path": template.format(other=other.pk)}

            result = measure(template, requests, clients, workers, make_request)
            results.append({"read": name, **result})
        return results
    finally:
        for user in made:
            user.delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", action="append", help="floor path(s); default: django and drf")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pings", action="store_true", help="also POST single pings (app CPU per ingest request)")
    parser.add_argument("--reads", action="store_true", help="also the mix's cacheable reads, warm")
    parser.add_argument("--wsgi", action="store_true", help="also a bare WSGI app under the same gunicorn settings")
    args = parser.parse_args()
    if args.wsgi:
        print(measure("/", args.requests, args.clients, args.workers, app="bench.hooks.floor_wsgi:application",
                      ready_path="/"))
    for path in args.path or ["/bench/floor/django/", "/bench/floor/drf/"]:
        print(measure(path, args.requests, args.clients, args.workers))
    if args.pings:
        print(measure_pings(args.requests, args.clients, args.workers))
    if args.reads:
        for result in measure_reads(args.requests, args.clients, args.workers):
            print(result)


if __name__ == "__main__":
    main()
