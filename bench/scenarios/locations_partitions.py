"""City partitioning ("10x database capacity"): partitioned pings table vs one table.

    python -m bench.scenarios.locations_partitions [--rows 10000000] [--keep]

What it loads and measures: docs/benchmarks/README.md; figures: docs/benchmarks/locations.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

import psycopg

from bench.harness import servers
from bench.harness.common import write_result

DB = "locations_partbench"
CITIES = 5

COLUMNS = """
    id bigint NOT NULL,
    user_id uuid NOT NULL,
    city_id integer NOT NULL,
    recorded_at timestamptz NOT NULL,
    lat double precision NOT NULL,
    lng double precision NOT NULL,
    accuracy_m real NULL,
    status smallint NOT NULL DEFAULT 0,
    expires_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    ingest_xid xid8 NOT NULL DEFAULT pg_current_xact_id()
"""


def _day(d) -> str:
    return f"{d:%Y-%m-%d} 00:00:00+00"


def create_tables(conn, days: list) -> None:
    conn.execute(f"CREATE TABLE flat ({COLUMNS})")
    conn.execute(f"CREATE TABLE part ({COLUMNS}) PARTITION BY LIST (city_id)")
    lists = [(f"part_city{c}", f"FOR VALUES IN ({c})") for c in range(1, CITIES + 1)]
    lists.append(("part_nocity", "DEFAULT"))
    for name, bound in lists:
        conn.execute(f"CREATE TABLE {name} PARTITION OF part {bound} PARTITION BY RANGE (recorded_at)")
        conn.execute(f"CREATE TABLE {name}_pdefault PARTITION OF {name} DEFAULT")
        for d in days:
            conn.execute(f"CREATE TABLE {name}_p{d:%Y%m%d} PARTITION OF {name} "
                         f"FOR VALUES FROM ('{_day(d)}') TO ('{_day(d + timedelta(days=1))}')")


def load(conn, table: str, rows: int, start: datetime, end: datetime) -> float:
    """Insert ``rows`` pings in arrival order; 90 % in the 5 cities, 10 % outside."""
    span = (end - start).total_seconds()
    t0 = time.perf_counter()
    conn.execute(f"""
        INSERT INTO {table} (id, user_id, city_id, recorded_at, lat, lng, accuracy_m, expires_at, received_at)
        SELECT i,
               md5((i % 100000)::text)::uuid,
               CASE WHEN (i * 7919) % 10 = 0 THEN 0 ELSE 1 + (i * 31) % {CITIES} END,
               ts, 48 + random(), 2 + random(), (random() * 60)::real,
               ts + interval '24 hours', ts
        FROM generate_series(1::bigint, {rows}) AS i,
             LATERAL (SELECT '{start.isoformat()}'::timestamptz + (i * {span / rows}) * interval '1 second' AS ts) t
    """)
    return time.perf_counter() - t0


def index(conn, table: str) -> float:
    t0 = time.perf_counter()
    conn.execute(f"ALTER TABLE {table} ADD PRIMARY KEY (city_id, recorded_at, id)")
    conn.execute(f"CREATE INDEX ON {table} (user_id, recorded_at)")
    conn.execute(f"CREATE INDEX ON {table} (expires_at)")
    conn.execute(f"CREATE INDEX ON {table} USING brin (received_at)")
    conn.execute(f"CREATE INDEX ON {table} USING brin (recorded_at) WITH (pages_per_range = 16)")
    conn.execute(f"ANALYZE {table}")
    return time.perf_counter() - t0


def timed_query(conn, sql: str, runs: int = 15) -> dict:
    for _ in range(3):
        conn.execute(sql).fetchall()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        rows = conn.execute(sql).fetchall()
        times.append((time.perf_counter() - t0) * 1000)
    plan = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}").fetchone()[0][0]
    top = plan["Plan"]
    return {
        "rows": len(rows), "median_ms": round(statistics.median(times), 2), "min_ms": round(min(times), 2),
        "planning_ms": round(plan.get("Planning Time", 0), 3), "execution_ms": round(plan["Execution Time"], 3),
        "shared_buffers_touched": top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0),
    }


def _wal(conn) -> str:
    return conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]


def _wal_bytes(conn, since: str) -> int:
    return int(conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", [since]).fetchone()[0])


def expire_part(conn, day) -> dict:
    names = [f"part_city{c}" for c in range(1, CITIES + 1)] + ["part_nocity"]
    cutoff = _day(day + timedelta(days=1))
    rows = conn.execute("SELECT count(*) FROM part WHERE recorded_at < %s", [cutoff]).fetchone()[0]
    wal, t0 = _wal(conn), time.perf_counter()
    for name in names:
        with conn.transaction():
            conn.execute("SET LOCAL lock_timeout = '2s'")
            conn.execute(f"ALTER TABLE {name} DETACH PARTITION {name}_p{day:%Y%m%d}")
            conn.execute(f"DROP TABLE {name}_p{day:%Y%m%d}")
    return {"rows_removed": rows, "seconds": round(time.perf_counter() - t0, 3), "wal_bytes": _wal_bytes(conn, wal)}


def expire_flat(conn, day) -> dict:
    wal, t0 = _wal(conn), time.perf_counter()
    cur = conn.execute("DELETE FROM flat WHERE recorded_at < %s", [_day(day + timedelta(days=1))])
    seconds = time.perf_counter() - t0
    wal_bytes = _wal_bytes(conn, wal)
    t1 = time.perf_counter()
    conn.execute("VACUUM flat")
    return {"rows_removed": cur.rowcount, "seconds": round(seconds, 3), "wal_bytes": wal_bytes,
            "vacuum_seconds_after": round(time.perf_counter() - t1, 3)}


def sizes(conn) -> dict:
    flat = conn.execute("SELECT pg_total_relation_size('flat')").fetchone()[0]
    part = conn.execute("SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('part')").fetchone()[0]
    return {"flat": int(flat), "part": int(part)}


def run(rows: int, keep: bool) -> dict:
    servers.start()
    if servers.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB}'"):
        servers.psql(f'DROP DATABASE "{DB}"')
    servers.psql(f'CREATE DATABASE "{DB}"')
    figures: dict = {}
    try:
        with psycopg.connect(servers.database_url(DB), autocommit=True) as conn:
            conn.execute("SET statement_timeout = 0")
            now = datetime.now(UTC).replace(microsecond=0)
            today = now.date()
            days = [today - timedelta(days=2), today - timedelta(days=1), today, today + timedelta(days=1)]
            start = datetime.combine(days[0], datetime.min.time(), tzinfo=UTC)
            create_tables(conn, days)
            figures["load_s"] = {t: round(load(conn, t, rows, start, now), 1) for t in ("flat", "part")}
            figures["index_s"] = {t: round(index(conn, t), 1) for t in ("flat", "part")}
            figures["bytes"] = sizes(conn)
            figures["rows"] = rows
            city = 3
            recent = f"recorded_at >= '{(now - timedelta(minutes=10)).isoformat()}'"
            q_recent = "SELECT id, user_id, lat, lng, recorded_at, accuracy_m, status FROM {t} " \
                       f"WHERE city_id = {city} AND {recent}"
            hour = f"recorded_at >= '{(now - timedelta(hours=1)).isoformat()}'"
            q_filter = f"SELECT count(*) FROM {{t}} WHERE city_id = {city} AND {hour} AND accuracy_m > 55"
            q_all_recent = f"SELECT count(*), avg(lat) FROM {{t}} WHERE {recent}"
            reads = {}
            for label, sql in [("one city, last 10 min (all columns)", q_recent),
                               ("one city, last hour, filter on a non-indexed column", q_filter),
                               ("all cities, last 10 min (aggregate)", q_all_recent)]:
                reads[label] = {t: timed_query(conn, sql.format(t=t)) for t in ("flat", "part")}
                flat, part = reads[label]["flat"]["median_ms"], reads[label]["part"]["median_ms"]
                reads[label]["flat_over_part"] = round(flat / part, 2) if part else None
            figures["reads"] = reads
            expiry = {"part (DETACH + DROP)": expire_part(conn, days[0]),
                      "flat (DELETE + VACUUM)": expire_flat(conn, days[0])}
            p, f = expiry["part (DETACH + DROP)"], expiry["flat (DELETE + VACUUM)"]
            expiry["time_ratio_flat_over_part"] = round((f["seconds"] + f["vacuum_seconds_after"]) / max(p["seconds"],
                                                        1e-3), 1)
            expiry["wal_ratio_flat_over_part"] = round(f["wal_bytes"] / max(p["wal_bytes"], 1), 1)
            figures["expiry_oldest_day"] = expiry
            figures["bytes_after_expiry"] = sizes(conn)
    finally:
        if not keep:
            servers.psql(f'DROP DATABASE IF EXISTS "{DB}"')
    return figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    figures = run(args.rows, args.keep)
    figures["total_run_s"] = round(time.perf_counter() - t0, 1)
    scoped = figures["reads"]["one city, last 10 min (all columns)"]["flat_over_part"]
    expiry = figures["expiry_oldest_day"]
    figures["plan"] = "city partitioning: 10x database capacity (plan 3.2)"
    figures["measured"] = (f"{args.rows:,} rows: one-city 10-min read {scoped}x faster partitioned; "
                           f"expiry of a day {expiry['time_ratio_flat_over_part']}x faster and "
                           f"{expiry['wal_ratio_flat_over_part']}x less WAL by DROP than DELETE + VACUUM")
    figures["holds"] = expiry["time_ratio_flat_over_part"] >= 10 and scoped >= 1

    how = f"python -m bench.scenarios.locations_partitions --rows {args.rows}"
    path = write_result("locations-partitions", figures, how,
                        {"rows": args.rows, "cities": CITIES, "span": "UTC midnight two days ago to now"})
    print(json.dumps(figures, indent=2))
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
