"""Ingest of location pings: the bulk path's pings/s and the CPU cost of ``POST locations/``.

    python -m bench.scenarios.locations_ingest [--batches 1500] [--requests 2000] [--workers 2]

The two phases and options: docs/benchmarks/README.md; figures: docs/benchmarks/locations.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import redis

from bench.harness import servers
from bench.harness.common import BASE_DIR, write_result

CITIES = [("berlin", "Berlin", 52.52, 13.405), ("paris", "Paris", 48.8566, 2.3522),
          ("london", "London", 51.5074, -0.1278), ("new-york", "New York", 40.7128, -74.006),
          ("san-francisco", "San Francisco", 37.7749, -122.4194)]


# ------------------------------------------------------------------------ bulk path


def _setup_django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.bench")
    import django

    django.setup()


def ensure_cities():
    from locations import services
    from locations.models import City

    for slug, name, lat, lng in CITIES:
        if not City.objects.filter(slug=slug).exists():
            services.create_city(slug=slug, name=name, lat=lat, lng=lng, radius_km=25)
    services.ensure_partitions(days_ahead=1)


def _batches(count: int, size: int = 100, per_user: int = 15):
    """``count`` batches of ``size`` walking pings, 30 s apart; each user sends ``per_user``
    batches in time order (its first one finds no cached last position: the cold path)."""
    from locations.validation import PingIn

    rng = random.Random(7)
    start = datetime.now(UTC) - timedelta(hours=20)
    users = max(1, count // per_user)
    state = []
    for u in range(users):
        _, _, lat, lng = CITIES[u % len(CITIES)]
        state.append([uuid.uuid4(), lat + rng.uniform(-0.1, 0.1), lng + rng.uniform(-0.1, 0.1)])
    batches = []
    for b in range(count):
        user = state[b % users]
        first = start + timedelta(seconds=30 * size * (b // users) + (b % users) % 29)
        pings = []
        for i in range(size):
            user[1] += rng.uniform(-0.0002, 0.0002)
            user[2] += rng.uniform(-0.0002, 0.0002)
            pings.append(PingIn(first + timedelta(seconds=30 * i), user[1], user[2], 10.0))
        batches.append((user[0], pings))
    return batches


def _measure(label, batches, run_one, tiers):
    from bench.harness.cpu import Tiers

    before, cpu0, t0 = tiers.sample(), time.process_time(), time.perf_counter()
    for user_id, pings in batches:
        run_one(user_id, pings)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    db = Tiers.delta(before, tiers.sample())["db"]
    n = sum(len(p) for _, p in batches)
    app_us, db_us = cpu / n * 1e6, db / n * 1e6
    return {
        "path": label, "pings": n, "wall_s": round(wall, 2), "pings_per_s_wall": round(n / wall),
        "app_cpu_us_per_ping": round(app_us, 2), "db_cpu_us_per_ping": round(db_us, 2),
        "pings_per_s_one_core_app": round(1e6 / app_us), "pings_per_s_one_core_db": round(1e6 / db_us),
        "pings_per_s_one_core_app_plus_db": round(1e6 / (app_us + db_us)),
    }


def bulk_worker(batches_count: int) -> dict:
    _setup_django()
    from django.db import connection

    from bench.harness.cpu import Tiers
    from locations import services
    from locations.models import Ping, PingStatus

    ensure_cities()
    tiers = Tiers({"db": [servers.postmaster_pid()]})
    warm = _batches(30, per_user=1)
    for user_id, pings in warm:
        services.ingest_pings(user_id, pings)
    results, used = [], list({u for u, _ in warm})

    batches = _batches(batches_count)
    used += list({u for u, _ in batches})
    results.append(_measure("ingest_pings (service: plausibility, city, unnest INSERT)", batches,
                            lambda u, p: services.ingest_pings(u, p), tiers))

    def bulk_create(user_id, pings):
        expires = timedelta(hours=24)
        Ping.objects.bulk_create([
            Ping(user_id=user_id, city_id=0, recorded_at=p.recorded_at, lat=p.lat, lng=p.lng,
                 accuracy_m=p.accuracy_m, status=PingStatus.MATCHABLE, expires_at=p.recorded_at + expires)
            for p in pings
        ])

    batches = _batches(batches_count)
    used += list({u for u, _ in batches})
    results.append(_measure("Ping.objects.bulk_create (ORM, no checks)", batches, bulk_create, tiers))

    def copy(user_id, pings):
        with connection.cursor() as cursor, cursor.cursor.copy(
            "COPY locations_ping (user_id, city_id, recorded_at, lat, lng, accuracy_m, status, expires_at) FROM STDIN"
        ) as cp:
            for p in pings:
                cp.write_row((user_id, 0, p.recorded_at, p.lat, p.lng, p.accuracy_m, 0,
                              p.recorded_at + timedelta(hours=24)))

    batches = _batches(batches_count)
    used += list({u for u, _ in batches})
    results.append(_measure("COPY (psycopg, no checks)", batches, copy, tiers))

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM locations_ping WHERE user_id = ANY(%s::uuid[])", [used])
    return {"bulk": results}


# ------------------------------------------------------------------------ HTTP path


class _Client:
    """Keeps one user's next ping time; posts through a fresh connection (sync workers close)."""

    def __init__(self, port: int, user: dict, start: datetime):
        self.port, self.user, self.next_at = port, user, start

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, float]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Content-Type": "application/json"}
        if path.startswith("/api/"):
            headers["Authorization"] = f"Bearer {self.user['access']}"
        t0 = time.perf_counter()
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        conn.close()
        return resp.status, (time.perf_counter() - t0) * 1000

    def ping_body(self, count: int) -> bytes:
        pings = []
        for _ in range(count):
            self.next_at += timedelta(seconds=2)
            pings.append({"lat": self.user["lat"], "lng": self.user["lng"], "recorded_at": self.next_at.isoformat(),
                          "accuracy_m": 8})
        return json.dumps({"pings": pings}).encode()


def _http_phase(label, clients, per_client: int, make_request, tiers, threads: int = 3) -> dict:
    from bench.harness.cpu import Tiers

    latencies, statuses, lock = [], {}, threading.Lock()
    chunks = [clients[i::threads] for i in range(threads)]

    def run(chunk):
        for _ in range(per_client):
            for client in chunk:
                status, ms = make_request(client)
                with lock:
                    latencies.append(ms)
                    statuses[status] = statuses.get(status, 0) + 1

    before, t0 = tiers.sample(), time.perf_counter()
    workers = [threading.Thread(target=run, args=(c,)) for c in chunks]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall = time.perf_counter() - t0
    cpu = Tiers.delta(before, tiers.sample())
    n = len(latencies)
    q = statistics.quantiles(latencies, n=100)
    return {
        "request": label, "requests": n, "statuses": statuses, "rate_per_s": round(n / wall, 1),
        "cpu_ms_per_request": {tier: round(sec / n * 1000, 3) for tier, sec in cpu.items()},
        "p50_ms": round(q[49], 2), "p95_ms": round(q[94], 2), "p99_ms": round(q[98], 2),
    }


def _cleanup_http(user_rows) -> None:
    """Delete the bench users' pings and their cached last positions (else a previous run's
    newer cached ping would make every ping of this run look late)."""
    ids = ",".join(f"'{u['id']}'" for u in user_rows)
    servers.psql(f"DELETE FROM locations_ping WHERE user_id IN ({ids})", database=servers.DB_NAME)
    client = redis.Redis.from_url(servers.redis_url(0))
    keys = list(client.scan_iter(match="*:loc:last:*", count=1000))
    if keys:
        client.delete(*keys)


def http_bench(requests: int, workers: int, users: int = 150, pool: int = 2, threads: int = 3) -> dict:
    from bench.harness.loadtest import Gunicorn, prepare_users

    # A sync worker serves one request at a time: a small pool keeps every backend warm (its
    # catalog caches and prepared statements) instead of cycling requests over 25 cold ones.
    env = servers.env(LOG_LEVEL="WARNING", DB_POOL_MIN_SIZE=str(pool), DB_POOL_MAX_SIZE=str(pool))
    users_file = prepare_users(users, tokens=True, env=env)
    user_rows = json.loads(open(users_file).read())
    user_rows = user_rows if isinstance(user_rows, list) else user_rows["users"]
    _cleanup_http(user_rows)  # a previous run's pings and cached last positions
    server = Gunicorn(env, workers)
    from bench.harness.cpu import Tiers

    tiers = Tiers({"app": [server.proc.pid], "db": [servers.postmaster_pid()], "redis": [servers.redis_pid()]})
    start = datetime.now(UTC) - timedelta(hours=2)
    clients = [_Client(server.port, u, start) for u in user_rows]
    per_client = max(1, requests // len(clients))
    results = []
    try:
        post1 = lambda c: c.request("POST", "/api/v1/locations/", c.ping_body(1))  # noqa: E731
        post10 = lambda c: c.request("POST", "/api/v1/locations/", c.ping_body(10))  # noqa: E731
        health = lambda c: c.request("GET", "/health/")  # noqa: E731
        _http_phase("warm-up", clients, 4, post1, tiers, threads=threads)
        phases = [("GET /health/ (floor: bare Django view)", per_client, health),
                  ("POST locations/ (1 ping)", per_client, post1),
                  ("POST locations/ (10 pings)", max(1, per_client // 3), post10)]
        for label, count, make in phases:
            results.append(_http_phase(label, clients, count, make, tiers, threads=threads))
    finally:
        server.stop()
        _cleanup_http(user_rows)
    return {"http": results, "users": len(clients)}


def _summary(figures: dict) -> dict:
    """The claim's row for docs/BENCHMARKS.md: measured, plan, holds."""
    parts, holds = [], True
    service = next((r for r in figures.get("bulk", []) if r["path"].startswith("ingest_pings")), None)
    if service:
        parts.append(f"bulk ingest_pings: {service['pings_per_s_one_core_app']} pings/s per app core, "
                     f"{service['pings_per_s_one_core_app_plus_db']} per core of app + DB")
        holds &= service["pings_per_s_one_core_app"] >= 50_000
    single = next((r for r in figures.get("http", []) if r["request"] == "POST locations/ (1 ping)"), None)
    if single:
        parts.append(f"POST locations/ (1 ping): {single['cpu_ms_per_request']['app']} ms app CPU, "
                     f"{single['cpu_ms_per_request']['db']} ms DB CPU per request")
        holds &= single["cpu_ms_per_request"]["app"] <= 2.0
    return {"measured": "; ".join(parts), "holds": holds,
            "plan": ">= 50 000 pings/s on the bulk path on one core; <= 2 ms app CPU per single-ping request"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=1500, help="batches of 100 pings per bulk path")
    parser.add_argument("--requests", type=int, default=2000, help="HTTP requests per measured phase")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=3, help="client threads (concurrent requests)")
    parser.add_argument("--pool", type=int, default=2, help="DB pool size per gunicorn worker (min = max)")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-bulk", action="store_true")
    parser.add_argument("--bulk-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bulk_worker:
        print(json.dumps(bulk_worker(args.batches)))
        return 0
    servers.start()
    servers.migrate()
    figures = {}
    if not args.skip_bulk:
        proc = subprocess.run([sys.executable, "-m", "bench.scenarios.locations_ingest", "--bulk-worker", "--batches",
                               str(args.batches)], cwd=BASE_DIR, env=servers.env(), capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stderr[-4000:], file=sys.stderr)
            return 1
        figures = json.loads(proc.stdout.strip().splitlines()[-1])
    if not args.skip_http:
        figures.update(http_bench(args.requests, args.workers, pool=args.pool, threads=args.threads))
    how = (f"python -m bench.scenarios.locations_ingest --batches {args.batches} --requests {args.requests} "
           f"--workers {args.workers} --threads {args.threads} --pool {args.pool}"
           + (" --skip-bulk" if args.skip_bulk else "") + (" --skip-http" if args.skip_http else ""))
    figures.update(_summary(figures))
    name = "locations-ingest" + (f"-http-w{args.workers}t{args.threads}" if args.skip_bulk else "")
    name += "-bulk" if args.skip_http else ""
    path = write_result(name, figures, how,
                        {"bulk_batches": args.batches, "batch_size": 100, "http_requests": args.requests,
                         "gunicorn_workers": args.workers, "client_threads": args.threads,
                          "db_pool_per_worker": args.pool})
    print(json.dumps(figures, indent=2))
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
