"""The plan's "100x faster stats queries": user_stats_mv read vs the live aggregate.

    python -m bench.scenarios.stats_mv [--users 1000000] [--reads 2000] [--live-runs 15]

Its steps: docs/benchmarks/README.md; figures: docs/benchmarks/analytics.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg

BASE_DIR = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(BASE_DIR))


from devtools import embedded  # noqa: E402

SCRATCH_DB = f"bench_stats_{os.getpid()}"

GENERATE_USERS = """
INSERT INTO users (id, phone, password, display_name, bio, avatar, is_verified, ghost_mode, trust_level,
                   is_shadow_banned, is_active, is_staff, is_superuser, created_at, last_active_at)
SELECT gen_random_uuid(), '+1' || (2000000000 + g)::text, '!', 'User ' || g, '', '', random() < 0.7, false, 0,
       false, true, false, false, now() - random() * interval '30 days',
       CASE WHEN random() < 0.6 THEN now() - random() * interval '48 hours' END
FROM generate_series(1, %s) AS g
"""


def _admin_sql(sql: str) -> None:
    with psycopg.connect(embedded.postgres_url("postgres"), autocommit=True) as conn:
        conn.execute(sql)


def _median_ms(fn, runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def _live_query_sql() -> str:
    """The SELECT behind user_stats_mv, read from the catalog (so the bench follows migrations)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT definition FROM pg_matviews WHERE matviewname = 'user_stats_mv'")
        return cursor.fetchone()[0].rstrip().rstrip(";")


GENERATE_PINGS = """
INSERT INTO locations_ping (user_id, city_id, recorded_at, lat, lng, accuracy_m, status, expires_at)
SELECT u.id, c.id, t.at, c.lat + (random() - 0.5) * 0.2, c.lng + (random() - 0.5) * 0.2, 10, 0,
       t.at + interval '24 hours'
FROM generate_series(1, %s) AS g
CROSS JOIN LATERAL (SELECT now() - random() * interval '23 hours' AS at) t
CROSS JOIN LATERAL (SELECT id, lat, lng FROM locations_city ORDER BY id OFFSET (g %% 5) LIMIT 1) c
CROSS JOIN LATERAL (SELECT gen_random_uuid() AS id) u
"""


def _city_view(pings: int, live_runs: int) -> dict:
    """The slow aggregate: a day of pings per city, live vs city_stats_mv (five cities)."""
    from django.db import connection

    from locations import services as locations

    for slug, lat, lng in (("berlin", 52.52, 13.405), ("paris", 48.857, 2.352), ("london", 51.507, -0.128),
                           ("madrid", 40.417, -3.704), ("rome", 41.903, 12.496)):
        locations.create_city(slug=slug, name=slug.title(), lat=lat, lng=lng, radius_km=25)
    figures: dict = {"pings": pings}
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(GENERATE_PINGS, [pings])
        figures["generate_pings_s"] = round(time.perf_counter() - started, 1)
        cursor.execute("VACUUM ANALYZE locations_ping")
        cursor.execute("SELECT definition FROM pg_matviews WHERE matviewname = 'city_stats_mv'")
        live_sql = cursor.fetchone()[0].rstrip().rstrip(";")

    def live():
        with connection.cursor() as cursor:
            cursor.execute(live_sql)
            cursor.fetchall()

    def view_read():
        with connection.cursor() as cursor:
            cursor.execute("SELECT slug, name, pings_24h, crossings_24h FROM city_stats_mv ORDER BY slug")
            cursor.fetchall()

    live()
    figures["live_aggregate_ms"] = round(_median_ms(live, max(3, live_runs // 3)), 1)
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY city_stats_mv")
        figures["refresh_concurrently_s"] = round(time.perf_counter() - started, 2)
    figures["view_read_ms"] = round(_median_ms(view_read, 500), 4)
    figures["ratio_wall"] = round(figures["live_aggregate_ms"] / figures["view_read_ms"])
    return figures


def measure(users: int, reads: int, live_runs: int, pings: int = 0) -> dict:
    import django

    django.setup()
    from django.db import connection

    from analytics import selectors, services

    figures: dict = {}
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(GENERATE_USERS, [users])
        figures["generate_users_s"] = round(time.perf_counter() - started, 1)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE users")

    started = time.perf_counter()
    assert services.refresh_stats().refreshed
    figures["refresh_concurrently_s"] = round(time.perf_counter() - started, 3)
    figures["refresh_concurrently_by_view_s"] = services.refresh_stats().seconds

    live_sql = _live_query_sql()

    def live():
        with connection.cursor() as cursor:
            cursor.execute(live_sql)
            cursor.fetchall()

    def view_read():
        with connection.cursor() as cursor:
            cursor.execute("SELECT total_users, new_users_24h, active_users_24h, verified_users, refreshed_at "
                           "FROM user_stats_mv")
            cursor.fetchall()

    live()  # warm the cache: both sides measured with the table in shared buffers
    view_read()
    figures["live_aggregate_ms"] = round(_median_ms(live, live_runs), 3)
    figures["view_read_ms"] = round(_median_ms(view_read, reads), 4)
    figures["selector_stats_ms"] = round(_median_ms(selectors.stats, reads), 4)
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + live_sql)
        figures["live_aggregate_server_ms"] = round(cursor.fetchone()[0][0]["Execution Time"], 3)
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM user_stats_mv")
        figures["view_read_server_ms"] = round(cursor.fetchone()[0][0]["Execution Time"], 4)
    figures["ratio_wall"] = round(figures["live_aggregate_ms"] / figures["view_read_ms"])
    figures["ratio_server"] = round(figures["live_aggregate_server_ms"] / figures["view_read_server_ms"])
    figures["ratio_vs_selector"] = round(figures["live_aggregate_ms"] / figures["selector_stats_ms"])
    figures["stats"] = dict(selectors.stats()["users"].items())
    if pings:
        figures["city_view"] = _city_view(pings, live_runs)
    connection.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--live-runs", type=int, default=15)
    parser.add_argument("--pings", type=int, default=0,
                        help="also measure city_stats_mv over this many pings of the last day (5 cities)")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        print(json.dumps(measure(args.users, args.reads, args.live_runs, args.pings)))
        return

    url = embedded.postgres_url(SCRATCH_DB)
    env = {**os.environ, "DATABASE_URL": url, "DB_POOL": "0", "CACHALOT_ENABLED": "0", "LOG_LEVEL": "WARNING",
           "DB_STATEMENT_TIMEOUT_MS": "900000", "DJANGO_SETTINGS_MODULE": "config.settings.bench"}
    _admin_sql(f"CREATE DATABASE {SCRATCH_DB}")
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], env=env, cwd=BASE_DIR,
                       check=True)
        out = subprocess.run([sys.executable, "-m", "bench.scenarios.stats_mv", "--inner", "--users", str(args.users),
                              "--reads", str(args.reads), "--live-runs", str(args.live_runs),
                              "--pings", str(args.pings)],
                             env=env, cwd=BASE_DIR, check=True, stdout=subprocess.PIPE, text=True).stdout
    finally:
        _admin_sql(f"DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE)")

    figures = json.loads(out.strip().splitlines()[-1])
    from bench.harness.common import write_result

    how = (f"python -m bench.scenarios.stats_mv --users {args.users} --reads {args.reads} --live-runs {args.live_runs} "
           f"--pings {args.pings} "
           "(scratch database on the development PostgreSQL 16, dropped afterwards)")
    path = write_result("analytics-stats-mv", figures, how, scale={"users": args.users, "pings": args.pings})
    print(json.dumps(figures, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
