"""PostgreSQL and app CPU of one ping's INSERT, by statement and by table layout, side by side.

    python -m bench.scenarios.ping_insert [--rounds 12 --batch 300 --users 1000 --synchronous-commit off]

One process, one connection, the bench PostgreSQL of ``bench/harness/servers.py`` (instance
``BENCH_INSTANCE``, default ``harness``: the seeded data set, so the real table has its size).
Each round runs a batch of one-ping INSERTs of every variant, in rotating order; per ping, the
calling thread's CPU (``time.thread_time``) and the CPU of the PostgreSQL backend serving the
connection (``/proc/<pid>/task/*/schedstat``), medians over the rounds and the median of the
paired ratios (a round's batches ran back to back).  The variants:

  arrays    ``ingest_pings``' statement for a batch (six array literals through ``unnest``),
            a batch of one, into the pings table;
  one row   its statement for a single ping (``VALUES`` of typed parameters), same table;
  copy, no checks, no expires btree, expires BRIN: the one-row statement into scratch copies
            of the table (same partitions: every city's list partition, days around today),
            made here and dropped at the end: as the table, without its three CHECK
            constraints, without the ``expires_at`` btree, with a BRIN index on ``expires_at``
            instead of the btree.  The copies start empty: compare them with one another;
  SELECT 1  the round trip alone (what a statement costs before it does anything).

The pings go to bench users of their own (``Pinglog n``, bench/scenarios/ping_log.py), whose
pings are deleted before and after.  Figures: docs/benchmarks/locations.md section 4.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psutil

#: Scratch copies: name suffix -> (keep the CHECK constraints, the expires_at index: btree, brin or none).
COPIES = {
    "copy": (True, "btree"),
    "no checks": (False, "btree"),
    "no expires btree": (True, None),
    "expires BRIN": (True, "brin"),
}
SCRATCH_PREFIX = "bench_pinginsert_"


def _scratch_name(label: str) -> str:
    return SCRATCH_PREFIX + label.replace(" ", "_")


def make_copy(cursor, label: str, city_ids: list[int], today) -> str:
    """A scratch copy of the pings table laid out as the real one (LIST by city, RANGE by day),
    with the constraints and indexes ``COPIES[label]`` says; returns its name."""
    from locations.models import NO_CITY, Ping

    checks, expires = COPIES[label]
    name = _scratch_name(label)
    cursor.execute(f"DROP TABLE IF EXISTS {name} CASCADE")
    cursor.execute(f"CREATE TABLE {name} (LIKE {Ping._meta.db_table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
                   "INCLUDING INDEXES) PARTITION BY LIST (city_id)")
    if not checks:
        cursor.execute("SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'c'", [name])
        for (constraint,) in cursor.fetchall():
            cursor.execute(f'ALTER TABLE {name} DROP CONSTRAINT "{constraint}"')
    if expires != "btree":
        cursor.execute("SELECT i.indexrelid::regclass::text FROM pg_index i JOIN pg_attribute a "
                       "ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
                       "WHERE i.indrelid = %s::regclass AND a.attname = 'expires_at'", [name])
        for (index,) in cursor.fetchall():
            cursor.execute(f"DROP INDEX {index}")
    if expires == "brin":
        cursor.execute(f"CREATE INDEX ON {name} USING brin (expires_at) WITH (pages_per_range = 16)")
    for city_id in [NO_CITY, *city_ids]:
        part = f"{name}_c{city_id}"
        bound = "DEFAULT" if city_id == NO_CITY else f"FOR VALUES IN ({int(city_id)})"
        cursor.execute(f"CREATE TABLE {part} PARTITION OF {name} {bound} PARTITION BY RANGE (recorded_at)")
        for offset in range(-1, 3):
            day = today + timedelta(days=offset)
            cursor.execute(f"CREATE TABLE {part}_d{offset + 1} PARTITION OF {part} "
                           f"FOR VALUES FROM ('{day}') TO ('{day + timedelta(days=1)}')")
        cursor.execute(f"CREATE TABLE {part}_default PARTITION OF {part} DEFAULT")
    return name


def drop_copies(cursor) -> None:
    for label in COPIES:
        cursor.execute(f"DROP TABLE IF EXISTS {_scratch_name(label)} CASCADE")


def variants(cursor) -> dict[str, Callable]:
    """label -> call(user_id, ping) running one statement on ``cursor`` (a psycopg cursor)."""
    from locations import selectors, services
    from locations.models import Ping

    arrays_sql = services.IngestSteps.insert_sql()
    one_sql = services.IngestSteps.insert_sql(one_ping=True)
    array = services.IngestSteps.array
    retention = services.retention()

    def arrays(user_id, ping):
        city = selectors.city_ids_for_points([(ping.lat, ping.lng)])
        cursor.execute(arrays_sql, [retention, array(city), array([ping.recorded_at.isoformat()]),
                                    array([repr(ping.lat)]), array([repr(ping.lng)]),
                                    array(["NULL" if ping.accuracy_m is None else repr(ping.accuracy_m)]),
                                    array([0]), user_id])

    def one_row(sql: str):
        def call(user_id, ping):
            city = selectors.city_ids_for_points([(ping.lat, ping.lng)])[0]
            cursor.execute(sql, [retention, city, ping.recorded_at, ping.lat, ping.lng, ping.accuracy_m, 0, user_id])
        return call

    def select_1(user_id, ping):
        cursor.execute("SELECT 1")
        cursor.fetchall()

    table = f"INSERT INTO {Ping._meta.db_table} "
    out = {"arrays": arrays, "one row": one_row(one_sql)}
    for label in COPIES:
        out[label] = one_row(one_sql.replace(table, f"INSERT INTO {_scratch_name(label)} ", 1))
    out["SELECT 1"] = select_1
    return out


def measure(*, user_ids: list, rounds: int, batch: int, synchronous_commit: str = "off", progress=None) -> dict:
    """The side-by-side run (Django set up, cities and partitions made); its figures."""
    from django.db import connections
    from django.utils import timezone

    from bench.harness.cpu import own_cpu
    from bench.scenarios.ping_log import Clocks
    from locations.models import City

    conn = connections["default"]
    conn.ensure_connection()
    raw = conn.connection
    backend = psutil.Process(raw.info.backend_pid)
    city_ids = list(City.objects.order_by("id").values_list("id", flat=True))
    clocks = Clocks(user_ids, timezone.now() - timedelta(seconds=500))
    samples: dict[str, list[tuple[float, float]]] = {}
    with raw.cursor() as cursor:
        cursor.execute(f"SET synchronous_commit = {synchronous_commit}")
        try:
            for label in COPIES:
                make_copy(cursor, label, city_ids, timezone.now().astimezone(UTC).date())
            calls = variants(cursor)
            order = list(calls)
            for r in range(rounds + 1):  # round 0 warms every statement up (psycopg prepares it after 5 runs)
                for label in order[r % len(order):] + order[:r % len(order)]:
                    pings = [clocks.next() for _ in range(batch)]
                    b0, t0 = own_cpu(backend), time.thread_time()
                    for user_id, ping in pings:
                        calls[label](user_id, ping)
                    t1, b1 = time.thread_time(), own_cpu(backend)
                    if r:
                        samples.setdefault(label, []).append(((t1 - t0) / batch * 1e6, (b1 - b0) / batch * 1e6))
                if progress:
                    progress(r, rounds)
        finally:
            drop_copies(cursor)
            cursor.execute("RESET synchronous_commit")
    return summarise(samples, synchronous_commit)


def summarise(samples: dict[str, list[tuple[float, float]]], synchronous_commit: str) -> dict:
    """Medians per variant (µs per ping) and paired ratios: arrays against one row, the copies
    against the plain copy."""
    def paired(label: str, base: str, i: int) -> float:
        return round(statistics.median(a[i] / b[i] for a, b in zip(samples[label], samples[base], strict=True)), 3)

    out: dict = {"pg_synchronous_commit": synchronous_commit, "variants": {}}
    for label, values in samples.items():
        base = "arrays" if label in ("arrays", "one row") else ("copy" if label in COPIES else None)
        row = {"rounds": len(values),
               "app_thread_cpu_us_per_ping": round(statistics.median(v[0] for v in values), 1),
               "pg_backend_cpu_us_per_ping": round(statistics.median(v[1] for v in values), 1),
               "pg_backend_cpu_us_by_round": [round(v[1], 1) for v in values]}
        if base and base != label:
            row[f"app_ratio_to_{base}_paired"] = paired(label, base, 0)
            row[f"pg_ratio_to_{base}_paired"] = paired(label, base, 1)
        out["variants"][label] = row
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12, help="measured rounds (one batch per variant each)")
    parser.add_argument("--batch", type=int, default=300, help="one-ping statements per batch")
    parser.add_argument("--users", type=int, default=1000, help="bench users the pings go round")
    parser.add_argument("--synchronous-commit", default="off", choices=["on", "off"],
                        help="PostgreSQL synchronous_commit of the connection (the bench's: off; production: on)")
    args = parser.parse_args(argv)
    os.environ.setdefault("BENCH_INSTANCE", "harness")
    from bench.harness.common import write_result
    from bench.harness.in_process import django_on_bench

    django_on_bench()
    from bench.scenarios.locations_ingest import ensure_cities
    from bench.scenarios.ping_log import ensure_users

    ensure_cities()
    user_ids = ensure_users(args.users)
    started = datetime.now(UTC).replace(microsecond=0).isoformat()
    load_before = os.getloadavg()[0]
    print(f"{len(user_ids)} users; {args.rounds} rounds of {args.batch} one-ping statements per variant; "
          f"synchronous_commit {args.synchronous_commit}; load average {load_before:.2f}; {started}", flush=True)
    try:
        figures = measure(user_ids=user_ids, rounds=args.rounds, batch=args.batch,
                          synchronous_commit=args.synchronous_commit,
                          progress=lambda r, n: print(f"round {r}/{n} load {os.getloadavg()[0]:.2f}", flush=True))
    finally:
        ensure_users(args.users)  # deletes this run's pings
    figures["load_average_before_after"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    figures["started_utc"] = started
    how = (f"python -m bench.scenarios.ping_insert --rounds {args.rounds} --batch {args.batch} --users {args.users} "
           f"--synchronous-commit {args.synchronous_commit}")
    path = write_result("ping-insert", figures, how, {"rounds": args.rounds, "batch": args.batch, "users": args.users})
    print("\n| variant | app CPU µs per ping | PostgreSQL backend CPU µs per ping | paired ratio (app, backend) |")
    print("| --- | ---: | ---: | --- |")
    for label, row in figures["variants"].items():
        ratios = ", ".join(f"{row[k]:.2f}" for k in row if k.endswith("_paired"))
        print(f"| {label} | {row['app_thread_cpu_us_per_ping']} | {row['pg_backend_cpu_us_per_ping']} | {ratios} |")
    print(json.dumps({k: v for k, v in figures.items() if k != "variants"}))
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
