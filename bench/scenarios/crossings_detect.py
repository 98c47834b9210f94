"""Crossing detection throughput at the density of docs/load-model.md.

    .venv/bin/python -m bench.scenarios.crossings_detect core|db [--users-per-city 20000] [--cities N]

``core``: the numpy detector in memory (the cell matcher beside the first, radius one of
bench/scenarios/detect_v1.py), ``db``: ``detect_crossings`` on PostgreSQL; docs/benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import psutil

from bench.scenarios.crossings_traffic import US, generate


def run_core(args) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.bench")
    from bench.scenarios import detect_v1
    from crossings.detection.core import Context, detect, find_segments

    window, gap = 600 * US, 3600 * US
    # (detect, find_segments) of each matcher; detect is what the detector runs, timed.
    matchers = {
        f"v1 radius {args.radius_m:g} m": (
            lambda ctx: detect_v1.detect(ctx, radius_m=args.radius_m, window_us=window, repeat_gap_us=gap),
            lambda ctx: detect_v1.find_segments(ctx, radius_m=args.radius_m, window_us=window)),
        f"v2 cells {args.cell_m:g} m": (
            lambda ctx: detect(ctx, cell_m=args.cell_m, window_us=window, repeat_gap_us=gap),
            lambda ctx: find_segments(ctx, cell_m=args.cell_m, window_us=window)),
    }
    total_minutes = 10 + max(args.batch_seconds) / 60 + 0.5
    tick = time.perf_counter()
    traffic = generate(args.users_per_city, args.cities, total_minutes)
    print(f"generated {len(traffic.t_us):,} pings of {args.users_per_city * args.cities:,} users "
          f"in {time.perf_counter() - tick:.1f} s")
    t0 = traffic.t_us.min()
    for batch_s in args.batch_seconds:
        batch_start = t0 + 10 * 60 * US
        batch_end = batch_start + batch_s * US
        # Context: 10 minutes before the batch and the batch itself (nothing later exists yet).
        mask = (traffic.t_us >= batch_start - 600 * US) & (traffic.t_us < batch_end)
        new = (traffic.t_us >= batch_start) & (traffic.t_us < batch_end)
        ctx = Context(user=traffic.user[mask], t=traffic.t_us[mask], lat=traffic.lat[mask],
                      lng=traffic.lng[mask], city=traffic.city[mask], new=new[mask])
        n_new = int(ctx.new.sum())
        print(f"batch {batch_s:>4} s: {n_new:>8,} new pings, context {len(ctx):>9,}")
        # Distinct other users matched per new ping, on a sample of the new pings (untimed).
        sample = Context(ctx.user, ctx.t, ctx.lat, ctx.lng, ctx.city, ctx.new & (np.cumsum(ctx.new) <= 20_000))
        for name, (run, find) in matchers.items():
            best = None
            for _ in range(args.repeat):
                cpu, wall = time.process_time(), time.perf_counter()
                enc, matches = run(ctx)
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                best = min(best or (cpu, wall), (cpu, wall))
            cpu, wall = best
            pairs = len(np.unique(enc.low * (1 << 20) + enc.high))
            seg = find(sample)
            users_per_ping = len(np.unique(seg.query * (1 << 20) + seg.user_b)) / int(sample.new.sum())
            print(f"   {name:<16} cpu {cpu:6.2f} s, wall {wall:6.2f} s -> {n_new / cpu:>9,.0f} pings/s (cpu); "
                  f"{matches / n_new:6.1f} ping pairs within the bounds and {users_per_ping:5.2f} distinct "
                  f"users matched per new ping; {pairs:,} user pairs")


def run_db(args) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.bench")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # Its own cache prefix, deleted at the end: the run bumps a cache version per user.
    os.environ["CACHE_KEY_PREFIX"] = f"bench{os.getpid()}"
    import django
    from django.conf import settings

    name = f"bench_crossings_{os.getpid()}"
    settings.DATABASES["default"]["TEST"] = {"NAME": name}
    django.setup()
    from django.db import connection

    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        _db_body(args)
    finally:
        from django.db import connections

        connections.close_all()
        connection.creation.destroy_test_db(old_name, verbosity=0)
        from django.core.cache import cache

        cache.delete_pattern("*")


def copy_pings(traffic, mask, user_ids, city_ids) -> None:
    from django.db import connection, transaction

    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    with transaction.atomic(), connection.cursor() as cursor:
        raw = cursor.connection.cursor()
        with raw.copy("COPY locations_ping (user_id, city_id, recorded_at, lat, lng, status, expires_at) "
                      "FROM STDIN") as copy:
            for u, c, t, la, ln in zip(traffic.user[mask].tolist(), traffic.city[mask].tolist(),
                                       traffic.t_us[mask].tolist(), traffic.lat[mask].tolist(),
                                       traffic.lng[mask].tolist(), strict=True):
                at = epoch + timedelta(microseconds=t)
                copy.write_row((user_ids[u], city_ids[c], at, la, ln, 0, at + timedelta(hours=24)))


def _backend_cpu() -> float:
    """CPU seconds used so far by this connection's PostgreSQL backend process."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def _db_body(args) -> None:
    from django.db import connection

    from core.ids import uuid7
    from crossings.detection.run import run_detection
    from locations.services import create_city

    now_us = int(time.time() * US)
    traffic = generate(args.users_per_city, args.cities, 11.0, start_us=now_us - 11 * 60 * US)
    n_users = args.users_per_city * args.cities
    user_ids = [uuid7() for _ in range(n_users)]
    with connection.cursor() as cursor:  # users rows are needed for the crossings' foreign keys
        raw = cursor.connection.cursor()
        columns = ("id, phone, password, display_name, bio, avatar, is_verified, ghost_mode, trust_level, "
                   "is_shadow_banned, is_active, is_staff, is_superuser, created_at")
        with raw.copy(f"COPY users ({columns}) FROM STDIN") as copy:
            for i, uid in enumerate(user_ids):
                copy.write_row((uid, f"+1999{i:09d}", "!", f"bench {i}", "", "", True, False, 0, False, True,
                                False, False, "2026-01-01T00:00:00Z"))
    from bench.scenarios.crossings_traffic import CITY_CENTRES

    city_ids = {i + 1: create_city(slug=f"bench{i}", name=f"Bench {i}", lat=CITY_CENTRES[i][0],
                                   lng=CITY_CENTRES[i][1], radius_km=25).pk for i in range(args.cities)}
    split = traffic.t_us.min() + 10 * 60 * US
    history = traffic.t_us < split
    tick = time.perf_counter()
    copy_pings(traffic, history, user_ids, city_ids)
    print(f"history: {int(history.sum()):,} pings loaded in {time.perf_counter() - tick:.1f} s")
    first = run_detection()
    print(f"first run (10 minutes of traffic at once): {first.summary()}")
    print("   " + ", ".join(f"{k} {v:.2f} s" for k, v in first.timings.items()))
    copy_pings(traffic, ~history, user_ids, city_ids)
    from crossings.models import DetectorState

    state_before = DetectorState.objects.values_list("xid_watermark", "received_after").get(pk=1)
    backend = _backend_cpu()
    cpu = time.process_time()
    if args.profile:
        profiler = cProfile.Profile()
        result = profiler.runcall(run_detection)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    else:
        result = run_detection()
    cpu = time.process_time() - cpu
    backend = _backend_cpu() - backend
    print(f"1-minute batch: {result.summary()}")
    print("   " + ", ".join(f"{k} {v:.2f} s" for k, v in result.timings.items()))
    print(f"   detector process CPU {cpu:.2f} s -> {result.pings / cpu:,.0f} pings/s per core "
          f"(wall {result.pings / result.seconds:,.0f} pings/s, PostgreSQL on the same 2 cores)")
    print(f"   PostgreSQL backend CPU {backend:.2f} s ({backend / result.pings * 1e6:.1f} us per ping, "
          f"{backend / max(result.changed, 1) * 1e6:.1f} us per crossing written); "
          f"both: {result.pings / (cpu + backend):,.0f} pings/s per core")
    again = run_detection()
    print(f"idle run: {again.summary()}")
    # The same batch once more (a duplicated batch): everything but the writes.
    from crossings.models import DetectorState

    DetectorState.objects.filter(pk=1).update(xid_watermark=state_before[0], received_after=state_before[1])
    backend = _backend_cpu()
    cpu = time.process_time()
    repeat = run_detection()
    cpu, backend = time.process_time() - cpu, _backend_cpu() - backend
    print(f"same batch again (nothing to write): {repeat.summary()}")
    print(f"   detector CPU {cpu:.2f} s, PostgreSQL backend CPU {backend:.2f} s")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["core", "db"])
    parser.add_argument("--users-per-city", type=int, default=20_000)
    parser.add_argument("--cities", type=int, default=None)
    parser.add_argument("--batch-seconds", type=int, nargs="+", default=[10, 60, 300])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--cell-m", type=float, default=200.0, help="core: the cell matcher's CROSSING_CELL_M")
    parser.add_argument("--radius-m", type=float, default=150.0, help="core: the v1 matcher's radius")
    parser.add_argument("--profile", action="store_true", help="db: profile the 1-minute run (cProfile)")
    args = parser.parse_args(argv)
    sys.path.insert(0, os.getcwd())
    if args.mode == "core":
        args.cities = args.cities or 5
        run_core(args)
    else:
        args.cities = args.cities or 1
        run_db(args)


if __name__ == "__main__":
    main()
