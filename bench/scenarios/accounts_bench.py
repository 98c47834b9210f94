"""Side-by-side micro-benchmarks of the accounts area, each off and on in one process.

    .venv/bin/python -m bench.scenarios.accounts_bench [--users 200000]

What it compares and how: docs/benchmarks/README.md; figures: docs/benchmarks/accounts.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
import uuid

os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"  # per-process database name and cache key prefix


def _median_cpu_wall(fn, repeat: int = 5, number: int = 1) -> tuple[float, float]:
    """Median (cpu ms, wall ms) per call."""
    cpu, wall = [], []
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(number):
            fn()
        cpu.append((time.process_time() - c0) * 1000 / number)
        wall.append((time.perf_counter() - w0) * 1000 / number)
    return round(statistics.median(cpu), 4), round(statistics.median(wall), 4)


def _make_users(count: int) -> list[uuid.UUID]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO users (id, password, phone, display_name, bio, avatar, is_verified, ghost_mode,
                               trust_level, is_shadow_banned, is_active, is_staff, is_superuser, created_at)
            SELECT gen_random_uuid(), '!', '+1' || (2000000000 + g)::text,
                   (ARRAY['Alice','Bob','Carol','Dan','Eve','Mallory','Oscar','Peggy','Trent','Walter'])[1 + g %% 10]
                       || ' ' || md5(g::text),
                   '', '', false, false, 0, false, true, false, false, now() - (g || ' seconds')::interval
            FROM generate_series(1, %s) AS g
            """,
            [count],
        )
        cursor.execute("ANALYZE users")
        cursor.execute("SELECT id FROM users ORDER BY created_at DESC LIMIT 200")
        return [row[0] for row in cursor.fetchall()]


def bench_auth(user) -> dict:
    from django.db import connection
    from django.test import Client

    from accounts import services
    from accounts.authentication import TokenUser

    _session, access, _refresh = services.open_session(user)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {access}")

    def request():
        assert client.get("/api/v1/blocks/").status_code == 200

    def measure():
        request()  # warm
        executed = []

        def count(execute, sql, params, many, context):
            executed.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            request()
        cpu, wall = _median_cpu_wall(request, repeat=5, number=60)
        return {"cpu_ms": cpu, "wall_ms": wall, "queries": len(executed)}

    fixed = measure()
    truthy = TokenUser.__bool__
    del TokenUser.__bool__  # as it was: LazyObject.__bool__ loads the row
    try:
        before = measure()
    finally:
        TokenUser.__bool__ = truthy
    return {"before_row_loaded": before, "after_id_only": fixed,
            "cpu_ratio": round(before["cpu_ms"] / fixed["cpu_ms"], 2)}


def bench_tokens(user) -> dict:
    """App CPU of the token endpoints: login pays the password hash, refresh only SHA-256."""
    from django.test import Client

    from tests.factories import DEFAULT_PASSWORD

    client = Client()
    body = json.dumps({"phone": user.phone, "password": DEFAULT_PASSWORD})

    def login():
        response = client.post("/api/v1/auth/login/", body, content_type="application/json")
        assert response.status_code == 200, response.content
        return response.json()["refresh"]

    state = {"refresh": login()}

    def refresh():
        response = client.post("/api/v1/auth/refresh/", json.dumps({"refresh": state["refresh"]}),
                               content_type="application/json")
        assert response.status_code == 200, response.content
        state["refresh"] = response.json()["refresh"]

    login_cpu, login_wall = _median_cpu_wall(login, repeat=3, number=3)
    refresh_cpu, refresh_wall = _median_cpu_wall(refresh, repeat=5, number=40)
    return {"login": {"cpu_ms": login_cpu, "wall_ms": login_wall},
            "refresh": {"cpu_ms": refresh_cpu, "wall_ms": refresh_wall},
            "cpu_ratio": round(login_cpu / refresh_cpu, 1)}


def _round_trips(fn) -> int:
    """Redis round trips (packets sent) of one call of ``fn``."""
    from redis.connection import AbstractConnection

    sent = []
    original = AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):
        sent.append(1)
        return original(self, command, check_health)

    AbstractConnection.send_packed_command = counting
    try:
        fn()
    finally:
        AbstractConnection.send_packed_command = original
    return len(sent)


def bench_revocation(user) -> dict:
    """What the revocation check adds to an authenticated request: off (the check a no-op, the
    throttle counting on its own as before) and on, for a plain read and a response-cache hit;
    and the database fallback while Redis is away."""
    from django.conf import settings
    from django.test import Client

    from accounts import authentication, services
    from core.cache import breaker as redis_breaker

    _session, access, _refresh = services.open_session(user)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {access}")
    urls = {"plain_get_blocks": "/api/v1/blocks/", "cached_get_profile": f"/api/v1/users/{user.pk}/"}

    def request_of(url):
        def request():
            assert client.get(url).status_code == 200

        return request

    def measure(url, rounds: list) -> None:
        request = request_of(url)
        request()
        request()  # warm (and stored, for the cacheable one)
        rounds.append(_median_cpu_wall(request, repeat=3, number=100))

    real_check = authentication.check_not_revoked

    def unchecked(request, claims):  # as before: no check, the throttle counts by itself
        return None

    figures: dict = {}
    for name, url in urls.items():
        on: list = []
        off: list = []
        for _ in range(5):  # interleaved: load on the shared machine hits both sides alike
            measure(url, on)
            authentication.check_not_revoked = unchecked
            try:
                measure(url, off)
            finally:
                authentication.check_not_revoked = real_check
        trips_on = _round_trips(request_of(url))
        authentication.check_not_revoked = unchecked
        try:
            trips_off = _round_trips(request_of(url))
        finally:
            authentication.check_not_revoked = real_check

        def summary(values, trips):
            return {"cpu_ms": round(statistics.median(c for c, _ in values), 4),
                    "wall_ms": round(statistics.median(w for _, w in values), 4), "redis_round_trips": trips}

        figures[name] = {"without_check": summary(off, trips_off), "with_check": summary(on, trips_on)}
        figures[name]["added_cpu_ms"] = round(figures[name]["with_check"]["cpu_ms"]
                                              - figures[name]["without_check"]["cpu_ms"], 4)
        figures[name]["added_wall_ms"] = round(figures[name]["with_check"]["wall_ms"]
                                               - figures[name]["without_check"]["wall_ms"], 4)
    old_seconds = settings.CACHE_BREAKER_SECONDS
    settings.CACHE_BREAKER_SECONDS = 3600
    quiet = logging.getLogger("core.api.throttling")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the rate limiter says "unavailable" on every request
    redis_breaker.trip(ConnectionError("bench: Redis away"), "bench")
    try:
        away: list = []
        for _ in range(3):
            measure(urls["plain_get_blocks"], away)
    finally:
        settings.CACHE_BREAKER_SECONDS = old_seconds
        quiet.setLevel(level)
        redis_breaker.reset()
    figures["redis_away_database_check"] = {"cpu_ms": round(statistics.median(c for c, _ in away), 4),
                                            "wall_ms": round(statistics.median(w for _, w in away), 4)}
    return figures


def bench_password_hashing(user) -> dict:
    """App CPU of one login under each hasher (Django's default parameters for both)."""
    from django.conf import settings
    from django.contrib.auth.hashers import get_hasher, get_hashers, get_hashers_by_algorithm, make_password
    from django.test import Client

    from accounts.models import User
    from tests.factories import DEFAULT_PASSWORD

    client = Client()
    body = json.dumps({"phone": user.phone, "password": DEFAULT_PASSWORD})

    def login():
        response = client.post("/api/v1/auth/login/", body, content_type="application/json")
        assert response.status_code == 200, response.content

    figures = {}
    saved = settings.PASSWORD_HASHERS
    try:
        for name, hasher in [("pbkdf2_sha256", "django.contrib.auth.hashers.PBKDF2PasswordHasher"),
                             ("argon2id", "django.contrib.auth.hashers.Argon2PasswordHasher")]:
            settings.PASSWORD_HASHERS = [hasher]
            get_hashers.cache_clear()  # Django clears them on override_settings only
            get_hashers_by_algorithm.cache_clear()
            User.objects.filter(pk=user.pk).update(password=make_password(DEFAULT_PASSWORD))
            cpu, wall = _median_cpu_wall(login, repeat=3, number=3)
            h = get_hasher()
            params = {k: getattr(h, k) for k in ("iterations", "time_cost", "memory_cost", "parallelism")
                      if hasattr(h, k)}
            figures[name] = {"login_cpu_ms": cpu, "login_wall_ms": wall, "params": params}
    finally:
        settings.PASSWORD_HASHERS = saved
        get_hashers.cache_clear()
        get_hashers_by_algorithm.cache_clear()
        User.objects.filter(pk=user.pk).update(password=make_password(DEFAULT_PASSWORD))
    figures["cpu_ratio_argon2_over_pbkdf2"] = round(figures["argon2id"]["login_cpu_ms"]
                                                    / figures["pbkdf2_sha256"]["login_cpu_ms"], 2)
    return figures


def bench_registration(user) -> dict:
    """auth/register/ for a free number and for one that has an account: same answer, and
    the app CPU and wall time of each (the hash dominates both)."""
    from django.conf import settings
    from django.test import Client

    settings.SMS_BACKEND = "accounts.sms.InMemorySMSBackend"
    from accounts.sms import InMemorySMSBackend

    client = Client()

    def register(phone):
        def call():
            response = client.post("/api/v1/auth/register/", json.dumps(
                {"phone": phone, "password": "a-long-passphrase", "display_name": "Bench"}),
                content_type="application/json")
            assert response.status_code == 202, response.content
            InMemorySMSBackend.outbox.clear()
        return call

    free, taken = register("+12025550999"), register(user.phone)
    free()
    taken()
    rounds = {"free": [], "taken": []}
    for _ in range(3):  # interleaved, so that load on the machine hits both alike
        rounds["free"].append(_median_cpu_wall(free, repeat=1, number=5))
        rounds["taken"].append(_median_cpu_wall(taken, repeat=1, number=5))
    figures = {name: {"cpu_ms": round(statistics.median(c for c, _ in values), 2),
                      "wall_ms": round(statistics.median(w for _, w in values), 2)}
               for name, values in rounds.items()}
    figures["wall_ratio_taken_over_free"] = round(figures["taken"]["wall_ms"] / figures["free"]["wall_ms"], 3)
    return figures


def bench_profiles(ids) -> dict:
    from accounts import selectors
    from accounts.models import User
    from core.cache import keys as cachekeys

    ids = ids[:50]
    selectors.get_public_profiles(ids)  # warm the cache
    keys = [selectors.profile_key(uid) for uid in ids]

    def one_round_trip():
        assert len(selectors.get_public_profiles(ids)) == 50

    def key_by_key():
        assert all(cachekeys.read_entries([key]).hits for key in keys)

    def database():
        assert len(list(User.objects.filter(pk__in=ids).values(
            "id", "display_name", "bio", "avatar", "is_verified", "is_active", "is_shadow_banned"))) == 50

    get_many = _median_cpu_wall(one_round_trip, number=50)
    one_by_one = _median_cpu_wall(key_by_key, number=20)
    db = _median_cpu_wall(database, number=50)
    return {"get_many_50": {"cpu_ms": get_many[0], "wall_ms": get_many[1]},
            "get_x50": {"cpu_ms": one_by_one[0], "wall_ms": one_by_one[1]},
            "database_50": {"cpu_ms": db[0], "wall_ms": db[1]},
            "wall_ratio_get_x50_over_get_many": round(one_by_one[1] / get_many[1], 2)}


def bench_hidden(ids) -> dict:
    from accounts import selectors
    from accounts.models import Block

    me = ids[0]
    Block.objects.bulk_create([Block(blocker_id=me, blocked_id=other) for other in ids[1:21]])
    selectors.hidden_user_ids(me)
    cached = _median_cpu_wall(lambda: selectors.hidden_user_ids(me), number=200)
    db = _median_cpu_wall(lambda: selectors.load_hidden_user_ids(me), number=200)
    return {"cached": {"cpu_ms": cached[0], "wall_ms": cached[1]},
            "database": {"cpu_ms": db[0], "wall_ms": db[1]}}


def bench_mark_active(ids) -> dict:
    from django.utils import timezone

    from accounts import services
    from accounts.models import User

    services.mark_active(ids[0])
    memo = _median_cpu_wall(lambda: services.mark_active(ids[0]), number=2000)

    def guarded():
        services.local_marks.clear()
        services.mark_active(ids[0])

    script = _median_cpu_wall(guarded, number=500)
    update = _median_cpu_wall(lambda: User.objects.filter(pk=ids[0]).update(last_active_at=timezone.now()),
                              number=200)
    return {"memo_hit": {"cpu_ms": memo[0], "wall_ms": memo[1]},
            "redis_guard": {"cpu_ms": script[0], "wall_ms": script[1]},
            "db_update_per_request": {"cpu_ms": update[0], "wall_ms": update[1]}}


def _plan_nodes(plan: dict) -> str:
    children = plan.get("Plans", [])
    inner = ", ".join(_plan_nodes(child) for child in children)
    return plan["Node Type"] + (f"({inner})" if inner else "")


def bench_flush(user_count: int) -> dict:
    from django.db import connection
    from django.utils import timezone

    from accounts import services
    from accounts.models import User
    from core.cache.client import redis_client

    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM users LIMIT %s", [user_count])
        ids = [row[0] for row in cursor.fetchall()]
    _, pending, _ = services.active_keys()
    client = redis_client()
    now = int(time.time())
    for start in range(0, len(ids), 5000):
        client.hset(pending, mapping={str(uid): now for uid in ids[start:start + 5000]})
    c0, w0 = time.process_time(), time.perf_counter()
    updated = services.flush_last_active()
    batched = {"users": updated, "cpu_ms": round((time.process_time() - c0) * 1000, 1),
               "wall_ms": round((time.perf_counter() - w0) * 1000, 1)}
    with connection.cursor() as cursor:  # what one 1000-row batch costs, and how
        batch = sorted(str(uid) for uid in ids[:1000])
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + services.FLUSH_SQL,
                       [batch, [float(now + 1)] * len(batch)])
        doc = cursor.fetchone()[0]
        doc = doc[0] if isinstance(doc, list) else doc
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'users'")
        upd, hot = cursor.fetchone()
    batched["one_batch_1000"] = {"execution_ms": round(doc["Execution Time"], 1),
                                 "plan": _plan_nodes(doc["Plan"])}
    batched["hot_update_share"] = round(hot / upd, 2) if upd else None
    sample = ids[:2000]
    c0, w0 = time.process_time(), time.perf_counter()
    stamp = timezone.now()
    for uid in sample:
        User.objects.filter(pk=uid).update(last_active_at=stamp)
    per_row = {"users": len(sample), "cpu_ms": round((time.process_time() - c0) * 1000, 1),
               "wall_ms": round((time.perf_counter() - w0) * 1000, 1)}
    per_user_batched = batched["wall_ms"] / max(1, batched["users"])
    per_user_row = per_row["wall_ms"] / len(sample)
    return {"batched": batched, "row_by_row": per_row,
            "wall_us_per_user": {"batched": round(per_user_batched * 1000, 1),
                                 "row_by_row": round(per_user_row * 1000, 1)},
            "wall_ratio": round(per_user_row / per_user_batched, 1)}


def _explain_ms(sql: str, params, *, seqscan_only: bool = False) -> tuple[float, str]:
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        if seqscan_only:
            cursor.execute("SET LOCAL enable_indexscan = off")
            cursor.execute("SET LOCAL enable_bitmapscan = off")
            cursor.execute("SET LOCAL enable_indexonlyscan = off")
        times = []
        plan = ""
        for _ in range(5):
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
            doc = cursor.fetchone()[0]
            doc = doc[0] if isinstance(doc, list) else doc
            times.append(doc["Execution Time"])
            plan = doc["Plan"]["Node Type"] + "/" + doc["Plan"].get("Plans", [{}])[0].get("Node Type", "")
        return round(statistics.median(times), 3), plan


def bench_admin(user_count: int) -> dict:
    from django.db import connection
    from django.db.models.functions import Upper

    from accounts.admin import EstimatedCountPaginator
    from accounts.models import User

    queryset = (User.objects.alias(name_upper=Upper("display_name")).filter(name_upper__startswith="MALLORY 0A")
                .order_by("-created_at")[:50])
    sql, params = queryset.query.sql_with_params()
    indexed = _explain_ms(sql, params)
    seq = _explain_ms(sql, params, seqscan_only=True)
    count_sql = "SELECT COUNT(*) FROM users"
    count_ms, _ = _explain_ms(count_sql, [])
    c0 = time.perf_counter()
    estimate = EstimatedCountPaginator(User.objects.order_by("-created_at"), 50).count
    estimate_ms = round((time.perf_counter() - c0) * 1000, 3)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM users")
        exact = cursor.fetchone()[0]
    return {
        "name_prefix_search_ms": {"expression_index": indexed[0], "seq_scan": seq[0],
                                  "plans": {"index": indexed[1], "seq": seq[1]},
                                  "ratio": round(seq[0] / max(indexed[0], 0.001), 1)},
        "changelist_count_ms": {"count_star": count_ms, "reltuples_estimate": estimate_ms,
                                "estimate": estimate, "exact": exact},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--only", default="", help="comma-separated parts to run (default: all), e.g. revocation")
    args = parser.parse_args(argv)

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_test_environment

    from bench.harness.common import write_result

    setup_test_environment()
    settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["user"] = "1000000/minute"
    settings.REPLICA_ALIASES = []  # the mirror alias would point at the development database
    from config.settings import base

    settings.PASSWORD_HASHERS = base.PASSWORD_HASHERS  # production's (Argon2id first)
    settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"].update(auth_ip="1000000/minute", auth_phone="1000000/minute",
                                                             code_phone="1000000/minute")
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        from tests.factories import make_user

        user = make_user(display_name="Bench")
        t0 = time.perf_counter()
        ids = _make_users(args.users)
        print(f"made {args.users} users in {time.perf_counter() - t0:.1f}s", flush=True)
        figures = {}
        for name, run in [("auth", lambda: bench_auth(user)), ("tokens", lambda: bench_tokens(user)),
                          ("revocation", lambda: bench_revocation(user)),
                          ("password_hashing", lambda: bench_password_hashing(user)),
                          ("registration", lambda: bench_registration(user)),
                          ("profiles", lambda: bench_profiles(ids)),
                          ("hidden", lambda: bench_hidden(ids)), ("mark_active", lambda: bench_mark_active(ids)),
                          ("flush", lambda: bench_flush(min(args.users, 50_000))),
                          ("admin", lambda: bench_admin(args.users))]:
            if args.only and name not in args.only.split(","):
                continue
            figures[name] = run()
            print(name, figures[name], flush=True)
        path = write_result(
            "accounts" + (f"-{args.only.replace(',', '-')}" if args.only else ""), figures,
            how="python -m bench.scenarios.accounts_bench --users N: accounts micro-benchmarks, each off and on in one "
                "process, in a throw-away database on the embedded PostgreSQL 16 and Redis 6.2",
            scale={"users": args.users, "flush_users": min(args.users, 50_000)},
        )
        print(f"wrote {path}")
    finally:
        from django.core.cache import cache

        cache.delete_pattern("*")
        from core.cache.client import redis_client

        client = redis_client()
        keys = list(client.scan_iter(match=f"{settings.CACHE_KEY_PREFIX}:*", count=1000))
        if keys:
            client.delete(*keys)
        from django.db import connections

        for conn in connections.all():
            if hasattr(conn, "close_pool"):
                conn.close_pool()
        connections.close_all()
        connection.creation.destroy_test_db(old_name, verbosity=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
