"""Social reads under gunicorn: app/DB/Redis CPU per request and cache hits, cold and warm.

    python -m bench.scenarios.social_reads [--users 5000] [--sample 300] [--duration 10] [--rate 40]

What it seeds and measures: docs/benchmarks/README.md; figures: docs/benchmarks/social.md.
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
from urllib.parse import urlsplit

import h3
import psutil
import redis

from bench.harness import servers
from bench.harness.common import BASE_DIR, RESULTS_DIR, write_result
from bench.harness.cpu import Tiers
from bench.harness.loadtest import Gunicorn

PY = sys.executable
NAME_PREFIX = "Social "
CITIES = [(52.52, 13.405), (48.8566, 2.3522), (51.5074, -0.1278), (40.7128, -74.006), (37.7749, -122.4194)]


# ------------------------------------------------------------------- seeding (in a child)


def seed(users: int, sample: int, out: str) -> None:
    """Create the data set once (idempotent by count) and write tokens for the sample."""
    import django

    django.setup()
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from accounts import services as account_services
    from accounts.models import User
    from connections.models import Connection
    from crossings.models import Crossing
    from stories.models import CloseFriend, Story

    rng = random.Random(42)
    existing = list(User.objects.filter(display_name__startswith=NAME_PREFIX).values_list("id", flat=True))
    if len(existing) < users:
        password = make_password("bench-password-2026")
        rows = [User(phone=f"+1312{5550000 + i:07d}"[:16], password=password, display_name=f"{NAME_PREFIX}{i}",
                     is_verified=True) for i in range(len(existing), users)]
        User.objects.bulk_create(rows, batch_size=2000)
        ids = list(User.objects.filter(display_name__startswith=NAME_PREFIX).order_by("display_name")
                   .values_list("id", flat=True))
        now = timezone.now()
        home = {uid: CITIES[i % len(CITIES)] for i, uid in enumerate(ids)}
        by_city = {}
        for uid, city in home.items():
            by_city.setdefault(city, []).append(uid)
        pairs = set()
        for uid in ids:
            peers = by_city[home[uid]]
            for other in rng.sample(peers, min(20, len(peers) - 1)):
                if other != uid:
                    pairs.add((min(uid, other), max(uid, other)))
        crossings = []
        for low, high in pairs:
            lat, lng = home[low]
            cell = h3.latlng_to_cell(lat + rng.uniform(-0.05, 0.05), lng + rng.uniform(-0.05, 0.05), 7)
            c_lat, c_lng = h3.cell_to_latlng(cell)
            at = now - timezone.timedelta(hours=rng.uniform(0, 72))
            crossings.append(Crossing(user_low_id=low, user_high_id=high, first_crossed_at=at, last_crossed_at=at,
                                      place_lat=c_lat, place_lng=c_lng, place_cell=cell))
        Crossing.objects.bulk_create(crossings, batch_size=5000, ignore_conflicts=True)
        pair_list = sorted(pairs)
        rng.shuffle(pair_list)
        conns = [Connection(user_low_id=low, user_high_id=high, requester_id=low, status="accepted",
                            responded_at=now) for low, high in pair_list[: len(pair_list) // 4]]
        Connection.objects.bulk_create(conns, batch_size=5000, ignore_conflicts=True)
        stories = []
        for uid in ids:
            lat, lng = home[uid]
            cell = h3.latlng_to_cell(lat + rng.uniform(-0.1, 0.1), lng + rng.uniform(-0.1, 0.1), 7)
            c_lat, c_lng = h3.cell_to_latlng(cell)
            created = now - timezone.timedelta(hours=rng.uniform(0, 20))
            stories.append(Story(author_id=uid, kind="text", text="bench story",
                                 visibility=rng.choice(["public", "connections", "connections", "close_friends"]),
                                 place_cell=cell, place_lat=c_lat, place_lng=c_lng, created_at=created,
                                 expires_at=created + timezone.timedelta(hours=24)))
        Story.objects.bulk_create(stories, batch_size=5000)
        friends = {}
        for conn in conns:
            friends.setdefault(conn.user_low_id, []).append(conn.user_high_id)
        CloseFriend.objects.bulk_create([CloseFriend(author_id=a, friend_id=f) for a, fs in friends.items()
                                         for f in fs[:2]], batch_size=5000, ignore_conflicts=True)
    # Stories expire: keep the set's stories live for this run.
    Story.objects.filter(author__display_name__startswith=NAME_PREFIX).update(
        expires_at=timezone.now() + timezone.timedelta(hours=20))
    chosen = list(User.objects.filter(display_name__startswith=NAME_PREFIX).order_by("display_name")[:sample])
    rows = []
    for user in chosen:
        crossed = (Crossing.objects.filter(user_low_id=user.pk).values_list("user_high_id", flat=True).first()
                   or Crossing.objects.filter(user_high_id=user.pk).values_list("user_low_id", flat=True).first())
        _session, access, _refresh = account_services.open_session(user, user_agent="bench", ip="127.0.0.1")
        conn = (Connection.objects.filter(status="accepted").filter(user_low_id=user.pk).values_list("id", flat=True)
                .first() or Connection.objects.filter(status="accepted", user_high_id=user.pk)
                .values_list("id", flat=True).first())
        rows.append({"id": str(user.pk), "access": access, "crossed": str(crossed),
                     "connection": str(conn) if conn else None})
    counts = {"users": User.objects.filter(display_name__startswith=NAME_PREFIX).count(),
              "crossings": Crossing.objects.count(), "connections": Connection.objects.count(),
              "live_stories": Story.objects.filter(expires_at__gt=timezone.now()).count(),
              "close_friends": CloseFriend.objects.count()}
    with open(out, "w") as fh:
        json.dump({"users": rows, "counts": counts, "pipelining": pipelining()}, fh)


def pipelining(keys: int = 50, rounds: int = 200) -> dict:
    """The plan's pipelining claim for versioned reads of N owners (values of ~250 bytes):

    * ``script``: ``get_many_versioned`` as deployed, one EVALSHA (1 round trip);
    * ``pipelined``: its Redis Cluster path, MGET of versions + pipeline of GETs (2);
    * ``one_by_one``: one versioned read per owner (N round trips), what a naive loop does.
    """
    from core.cache import keys as cachekeys

    owners = [f"bench-{i}" for i in range(keys)]
    cachekeys.get_many_versioned("benchpipe", owners).fill({o: {"v": o, "pad": "x" * 200} for o in owners}, 300)
    scripted = cachekeys.is_cluster

    def script():
        assert len(cachekeys.get_many_versioned("benchpipe", owners).hits) == keys

    def pipelined():
        cachekeys.is_cluster = lambda client: True
        try:
            assert len(cachekeys.get_many_versioned("benchpipe", owners).hits) == keys
        finally:
            cachekeys.is_cluster = scripted

    def one_by_one():
        for owner in owners:
            cachekeys.get_many_versioned("benchpipe", [owner])

    out = {"keys": keys, "repetitions": 7, "statistic": "median of 7 alternating repetitions"}
    variants = (("script", script, 1), ("pipelined", pipelined, 2), ("one_by_one", one_by_one, keys))
    samples = {name: ([], []) for name, _fn, _t in variants}
    for _rep in range(7):  # alternate the variants: the shared machine's load drifts
        for name, fn, _trips in variants:
            fn()
            cpu0, t0 = time.process_time(), time.perf_counter()
            for _ in range(rounds // 4):
                fn()
            samples[name][0].append((time.perf_counter() - t0) * 1000 / (rounds // 4))
            samples[name][1].append((time.process_time() - cpu0) * 1000 / (rounds // 4))
    for name, _fn, trips in variants:
        out[name] = {"ms_per_batch": round(statistics.median(samples[name][0]), 3),
                     "client_cpu_ms_per_batch": round(statistics.median(samples[name][1]), 3),
                     "round_trips": trips}
    out["speedup_script"] = round(out["one_by_one"]["ms_per_batch"] / out["script"]["ms_per_batch"], 1)
    out["speedup_pipelined"] = round(out["one_by_one"]["ms_per_batch"] / out["pipelined"]["ms_per_batch"], 1)
    return out


# --------------------------------------------------------------------------- load


ENDPOINTS = {
    "crossings": lambda u: "/api/v1/crossings/",
    "connections": lambda u: "/api/v1/connections/",
    "feed": lambda u: "/api/v1/stories/feed/",
    "profile": lambda u: f"/api/v1/users/{u['crossed']}/",
    # The framework floor in the same run: a bare DRF view (bench/hooks/floor_views.py), no auth.
    "floor_drf": lambda u: "/bench/floor/drf/",
}


class Client(threading.local):
    pass


def _request(conn_holder, base, path, token, method="GET", body=None) -> tuple[int, int, float]:
    conn = getattr(conn_holder, "conn", None)
    if conn is None:
        parts = urlsplit(base)
        conn = conn_holder.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    t0 = time.perf_counter()
    headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"}
    if body is not None:
        headers["Content-Type"] = "application/json"
        body = json.dumps(body)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
    except (http.client.HTTPException, OSError):
        conn_holder.conn = None
        return 599, -1, time.perf_counter() - t0
    return resp.status, int(resp.getheader("X-Bench-Queries") or -1), time.perf_counter() - t0


def run_phase(base, users, endpoint, *, requests=None, duration=None, rate=None, threads=4) -> list[tuple]:
    """Each user once (``duration`` None: cold), a paced steady run at ``rate`` (warm), or with
    ``rate`` None a closed loop: ``threads`` clients asking as fast as they are answered
    (saturated: the processes stay hot, as in production at scale)."""
    results, lock = [], threading.Lock()
    holder = Client()
    if duration is None:
        queue = list(users)
        def work():
            while True:
                with lock:
                    if not queue:
                        return
                    user = queue.pop()
                r = _request(holder, base, ENDPOINTS[endpoint](user), user["access"])
                with lock:
                    results.append(r)
    else:
        rng = random.Random(7)
        interval = threads / rate if rate else 0.0
        deadline = time.monotonic() + duration
        def work():
            next_at = time.monotonic()
            while time.monotonic() < deadline:
                user = rng.choice(users)
                r = _request(holder, base, ENDPOINTS[endpoint](user), user["access"])
                with lock:
                    results.append(r)
                if interval:
                    next_at += rng.expovariate(1 / interval)
                    time.sleep(max(0.0, next_at - time.monotonic()))
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return results


# docs/load-model.md, per user and minute: the reads measured here and the writes that invalidate them.
MIX = [("crossings", 1.0), ("feed", 1.0), ("profile", 0.5), ("connections", 0.25),
       ("post_message", 0.5), ("post_story", 0.02)]


def run_mix(base, users, *, duration, rate, threads=4) -> dict[str, list]:
    """The reads and writes above in the load model's proportions, at ``rate`` requests/s."""
    results, lock = {name: [] for name, _w in MIX}, threading.Lock()
    holder = Client()
    rng = random.Random(11)
    names, weights = [n for n, _w in MIX], [w for _n, w in MIX]
    interval, deadline = threads / rate, time.monotonic() + duration

    def work():
        next_at = time.monotonic()
        while time.monotonic() < deadline:
            with lock:
                user, name = rng.choice(users), rng.choices(names, weights)[0]
            if name == "post_message":
                if not user["connection"]:
                    continue
                r = _request(holder, base, f"/api/v1/connections/{user['connection']}/messages/", user["access"],
                             "POST", {"body": "bench message"})
            elif name == "post_story":
                r = _request(holder, base, "/api/v1/stories/", user["access"], "POST",
                             {"text": "bench story", "visibility": "connections"})
            else:
                r = _request(holder, base, ENDPOINTS[name](user), user["access"])
            with lock:
                results[name].append(r)
            next_at += rng.expovariate(1 / interval)
            time.sleep(max(0.0, next_at - time.monotonic()))

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return results


def summarise(results, cpu: dict, floor: int | None = None) -> dict:
    ok = [r for r in results if r[0] in (200, 201, 304)]
    queries = [q for _s, q, _t in ok if q >= 0]
    floor = min(queries) if floor is None and queries else floor
    hits = sum(1 for q in queries if q <= floor) if queries else 0
    latencies = sorted(t * 1000 for _s, _q, t in ok)
    n = len(results)
    return {
        "requests": n, "errors": n - len(ok),
        "app_cpu_ms": round(cpu["app"] * 1000 / n, 3) if n else None,
        "db_cpu_ms": round(cpu["db"] * 1000 / n, 3) if n else None,
        "redis_cpu_ms": round(cpu["redis"] * 1000 / n, 3) if n else None,
        "queries_per_request": round(statistics.mean(queries), 2) if queries else None,
        "query_floor": floor,
        "cache_hit_rate": round(hits / len(queries), 3) if queries else None,
        "p50_ms": round(latencies[len(latencies) // 2], 2) if latencies else None,
        "p95_ms": round(latencies[int(len(latencies) * 0.95)], 2) if latencies else None,
    }


DB_NAME = "crossings_social_bench"
REDIS_DIR = servers.BENCH_DIR / "social-redis"


class OwnRedis:
    """A redis-server for this benchmark alone (the bench one is shared by other runs)."""

    def __init__(self):
        from devtools.embedded import redis_server_binary

        REDIS_DIR.mkdir(parents=True, exist_ok=True)
        self.socket = REDIS_DIR / "redis.sock"
        self.socket.unlink(missing_ok=True)
        self.proc = subprocess.Popen([redis_server_binary(), "--port", "0", "--unixsocket", str(self.socket),
                                      "--save", "", "--appendonly", "no", "--dir", str(REDIS_DIR)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not self.socket.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)

    def url(self, db: int = 0) -> str:
        return f"unix://{self.socket}?db={db}"

    def flush(self) -> None:
        redis.Redis.from_url(self.url(0)).flushdb()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def db_backends_cpu() -> float:
    """CPU seconds of the PostgreSQL backends serving this benchmark's database only."""
    from bench.harness.cpu import own_cpu

    total = 0.0
    try:
        children = psutil.Process(servers.postmaster_pid()).children()
    except psutil.Error:
        return 0.0
    for child in children:
        try:
            if f" {DB_NAME} " in " ".join(child.cmdline()) + " ":
                total += own_cpu(child)
        except psutil.Error:
            pass
    return total


class SocialTiers:
    def __init__(self, app_pid: int, redis_pid: int):
        self.app = Tiers({"app": [app_pid], "redis": [redis_pid]})

    def sample(self) -> dict:
        return {**self.app.sample(), "db": db_backends_cpu()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--sample", type=int, default=300)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--rate", type=float, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--saturated", type=float, default=5,
                        help="seconds of a closed loop (8 clients, no think time) per read after the warm run; 0: none")
    parser.add_argument("--seed-only", action="store_true")
    parser.add_argument("--fresh", action="store_true", help="drop the benchmark's database and seed again")
    args = parser.parse_args(argv)

    servers.start()
    if args.fresh:
        servers.psql(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    if not servers.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'"):
        servers.psql(f'CREATE DATABASE "{DB_NAME}"')
    own_redis = OwnRedis()
    try:
        return _measure(args, own_redis)
    finally:
        own_redis.stop()


def _measure(args, own_redis) -> int:
    env = servers.env(BENCH_QUERY_COUNT="1", BENCH_FLOOR_VIEWS="1", RATE_LIMIT_USER="1000000/minute",
                      DATABASE_URL=servers.database_url(DB_NAME), REDIS_URL=own_redis.url(0),
                      CELERY_BROKER_URL=own_redis.url(1).replace("unix://", "redis+socket://"))
    subprocess.run([PY, "manage.py", "migrate", "--no-input"], cwd=BASE_DIR, env=env, check=True,
                   capture_output=True)
    out = RESULTS_DIR / ".social-users.json"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    seed_code = f"from bench.scenarios.social_reads import seed; seed({args.users}, {args.sample}, {str(out)!r})"
    subprocess.run([PY, "-c", seed_code],
                   cwd=BASE_DIR, env=env, check=True)
    seeded = json.loads(out.read_text())
    print(f"seeded/loaded in {time.monotonic() - t0:.1f}s: {seeded['counts']}", flush=True)
    print(f"pipelining: {seeded['pipelining']}", flush=True)
    if args.seed_only:
        return 0
    users = seeded["users"]
    app = Gunicorn(env, args.workers)
    figures = {}
    try:
        tiers = SocialTiers(app.proc.pid, own_redis.proc.pid)
        for endpoint in ENDPOINTS:
            own_redis.flush()
            before = tiers.sample()
            cold = run_phase(app.url, users, endpoint)
            cold_cpu = Tiers.delta(before, tiers.sample())
            before = tiers.sample()
            warm = run_phase(app.url, users, endpoint, duration=args.duration, rate=args.rate)
            warm_cpu = Tiers.delta(before, tiers.sample())
            warm_summary = summarise(warm, warm_cpu)
            figures[endpoint] = {"cold": summarise(cold, cold_cpu, floor=warm_summary["query_floor"]),
                                 "warm": warm_summary}
            if args.saturated:
                before = tiers.sample()
                hot = run_phase(app.url, users, endpoint, duration=args.saturated, rate=None, threads=8)
                figures[endpoint]["saturated"] = summarise(hot, Tiers.delta(before, tiers.sample()),
                                                           floor=warm_summary["query_floor"])
                figures[endpoint]["saturated"]["req_per_s"] = round(len(hot) / args.saturated)
            print(endpoint, json.dumps(figures[endpoint]), flush=True)
        # The mix with its writes, from warm caches: each user reads each endpoint once first.
        for endpoint in ENDPOINTS:
            run_phase(app.url, users, endpoint)
        before = tiers.sample()
        mixed = run_mix(app.url, users, duration=args.duration * 2, rate=args.rate)
        cpu = Tiers.delta(before, tiers.sample())
        total = sum(len(rows) for rows in mixed.values())
        reads = [name for name, _w in MIX if not name.startswith("post_")]
        per = {name: summarise(rows, {k: 0.0 for k in cpu}, floor=0) for name, rows in mixed.items()}
        read_total = sum(per[name]["requests"] for name in reads)
        figures["mix"] = {
            "requests": total, "errors": sum(p["errors"] for p in per.values()),
            "app_cpu_ms": round(cpu["app"] * 1000 / total, 3), "db_cpu_ms": round(cpu["db"] * 1000 / total, 3),
            "redis_cpu_ms": round(cpu["redis"] * 1000 / total, 3),
            "read_cache_hit_rate": round(sum(per[n]["cache_hit_rate"] * per[n]["requests"] for n in reads)
                                         / read_total, 3) if read_total else None,
            "per_endpoint": {name: {"requests": p["requests"], "errors": p["errors"],
                                    "queries_per_request": p["queries_per_request"],
                                    "cache_hit_rate": p["cache_hit_rate"], "p50_ms": p["p50_ms"],
                                    "p95_ms": p["p95_ms"]} for name, p in per.items()},
        }
        print("mix", json.dumps(figures["mix"]), flush=True)
    finally:
        app.stop()
    figures["pipelining"] = seeded["pipelining"]
    how = (f"python -m bench.scenarios.social_reads --users {args.users} --sample {args.sample} "
           f"--duration {args.duration} "
           f"--rate {args.rate} --workers {args.workers} --saturated {args.saturated}")
    write_result("social-reads", figures, how, scale={**seeded["counts"], "sample_users": args.sample,
                                                      "warm_rate_per_s": args.rate})
    return 0


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.bench")
    sys.exit(main())
