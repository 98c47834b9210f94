"""Detection shards side by side: the same minute of pings detected by 1 worker (CROSSING_SHARDS=1),
by 2 shards run one after the other in one worker, and by 2 shards in 2 worker processes at once.

    .venv/bin/python -m bench.scenarios.crossings_shards [--users-per-city 20000] [--cities 2] [--repeat 2]

A scratch database (``bench_shards_<pid>``, dropped at the end) gets ``--cities`` cities of the
traffic model (bench/scenarios/crossings_traffic.py), 10 minutes of history (detected once, so
the records of people already together exist), then one more minute: the measured batch.
Before each measured run the crossing records and the watermarks are put back as they were
after the history, so every run does the same work.  Per run: wall time from the start signal
to the last worker's commit, CPU seconds of each worker process and of its PostgreSQL backend,
the time the stores waited for each other, the load average and the CPU the rest of the machine
used meanwhile.  The realtime app's receiver of ``crossing_recorded`` (events written after the
commit) is disconnected: it is not detection.  Writes bench/results/crossings-shards.json (read
by bench/harness/capacity.py).  docs/benchmarks/crossings.md, section 5.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time

import psutil

from bench.scenarios.crossings_traffic import CITY_CENTRES, US, generate

CONFIGS = [("1 shard, 1 worker", 1, 1), ("2 shards, 1 worker (one after the other)", 2, 1),
           ("2 shards, 2 workers (at once)", 2, 2)]


def _setup_django(db_name: str | None = None, shards: int | None = None, test_name: str | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.bench")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django
    from django.conf import settings

    if test_name:
        settings.DATABASES["default"]["TEST"] = {"NAME": test_name}
    if db_name:
        settings.DATABASES["default"]["NAME"] = db_name
    if shards:
        settings.CROSSING_SHARDS = shards
    django.setup()
    # The realtime app's work after each commit (an event per user of a changed crossing) is
    # not detection, and runs outside the store lock: left out, in every configuration alike.
    from crossings.signals import crossing_recorded

    crossing_recorded.disconnect(dispatch_uid="realtime.crossing_recorded")


def _backend_cpu() -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def _no_statement_timeout() -> None:
    """A busy 2-core machine may take longer than the app's statement timeout for a whole batch."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")


def _worker(db_name: str, shards: int, indexes: list[int], ready, go, out) -> None:
    """One worker process: run ``indexes`` shards one after the other once ``go`` is set."""
    _setup_django(db_name, shards)
    from crossings.detection.run import run_detection

    _no_statement_timeout()
    backend = _backend_cpu()  # opens the connection before the clock starts
    ready.put(os.getpid())
    go.wait()
    cpu, wall = time.process_time(), time.perf_counter()
    results = [run_detection(shard=i) for i in indexes]
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    backend = _backend_cpu() - backend
    if os.environ.get("BENCH_SHARDS_TIMINGS"):
        for index, r in zip(indexes, results, strict=True):
            print(f"    shard {index}/{shards}: " + ", ".join(f"{k} {v:.2f} s" for k, v in r.timings.items()),
                  file=sys.stderr)
    out.put({"pings": sum(r.pings for r in results), "changed": sum(r.changed for r in results),
             "pairs": sum(r.pairs for r in results), "context": sum(r.context_pings for r in results),
             "cpu": cpu, "backend_cpu": backend, "wall": wall,
             "store_lock_wait": sum(r.timings.get("store_lock_wait", 0.0) for r in results),
             "store_rows_lock": sum(r.timings.get("store_rows_lock", 0.0) for r in results),
             "store_cap": sum(r.timings.get("store_cap", 0.0) for r in results),
             "commit": sum(r.timings.get("commit", 0.0) for r in results),
             "store": sum(r.timings.get("store", 0.0) for r in results)})


def _reset(saved: dict, shards: int) -> None:
    """Records and watermarks as after the history; watermark rows for ``shards``."""
    from django.db import connection

    from crossings.models import DetectorState

    _no_statement_timeout()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE crossings")
        cursor.execute("INSERT INTO crossings SELECT * FROM bench_saved_crossings")
        cursor.execute("VACUUM ANALYZE crossings")
    DetectorState.objects.all().delete()
    DetectorState.objects.bulk_create([DetectorState(pk=i + 1, shards=shards, **saved) for i in range(shards)])


def _busy_cpu() -> float:
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0) + getattr(t, "steal", 0)


def _measure(db_name: str, saved: dict, shards: int, workers: int) -> dict:
    _reset(saved, shards)
    from django.db import connections

    connections.close_all()
    ctx = multiprocessing.get_context("spawn")
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    plan = [list(range(shards))] if workers == 1 else [[i] for i in range(shards)]
    procs = [ctx.Process(target=_worker, args=(db_name, shards, indexes, ready, go, out)) for indexes in plan]
    for p in procs:
        p.start()
    pids = [ready.get(timeout=300) for _ in procs]
    load_before = os.getloadavg()[0]
    busy, wall = _busy_cpu(), time.perf_counter()
    go.set()
    parts = [out.get(timeout=1800) for _ in procs]
    wall, busy = time.perf_counter() - wall, _busy_cpu() - busy
    for p in procs:
        p.join()
    ours = sum(part["cpu"] + part["backend_cpu"] for part in parts)
    pings = sum(part["pings"] for part in parts)
    del pids
    return {
        "pings": pings, "wall_s": round(wall, 2), "pings_per_s_wall": round(pings / wall),
        "app_cpu_s": round(sum(p["cpu"] for p in parts), 2),
        "db_cpu_s": round(sum(p["backend_cpu"] for p in parts), 2),
        "cpu_us_per_ping": round(ours / pings * 1e6, 1),
        "store_s": round(sum(p["store"] for p in parts), 2),
        "store_lock_wait_s": round(sum(p["store_lock_wait"] for p in parts), 2),
        "store_rows_lock_s": round(sum(p["store_rows_lock"] for p in parts), 2),
        "store_cap_s": round(sum(p["store_cap"] for p in parts), 2),
        "commit_s": round(sum(p["commit"] for p in parts), 2),
        "context_pings": sum(p["context"] for p in parts), "pairs": sum(p["pairs"] for p in parts),
        "changed": sum(p["changed"] for p in parts),
        "load_avg_1m": round(max(load_before, os.getloadavg()[0]), 1),
        "other_cpu_s": round(max(busy - ours, 0.0), 1),
    }


def run(args) -> dict:
    db_name = f"bench_shards_{os.getpid()}"
    os.environ["CACHE_KEY_PREFIX"] = f"bench{os.getpid()}"  # the workers (spawned) inherit it
    _setup_django(test_name=db_name)
    from django.db import connection, connections

    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        return _body(args, db_name)
    finally:
        connections.close_all()
        connection.creation.destroy_test_db(old_name, verbosity=0)
        from django.core.cache import cache

        cache.delete_pattern("*")


def _body(args, db_name: str) -> dict:
    from django.conf import settings
    from django.db import connection

    from bench.scenarios.crossings_detect import copy_pings
    from core.ids import uuid7
    from crossings.detection.run import run_detection
    from crossings.models import DetectorState
    from locations.services import create_city

    _no_statement_timeout()
    now_us = int(time.time() * US)
    traffic = generate(args.users_per_city, args.cities, 11.0, start_us=now_us - 11 * 60 * US)
    n_users = args.users_per_city * args.cities
    user_ids = [uuid7() for _ in range(n_users)]
    with connection.cursor() as cursor:
        raw = cursor.connection.cursor()
        columns = ("id, phone, password, display_name, bio, avatar, is_verified, ghost_mode, trust_level, "
                   "is_shadow_banned, is_active, is_staff, is_superuser, created_at")
        with raw.copy(f"COPY users ({columns}) FROM STDIN") as copy:
            for i, uid in enumerate(user_ids):
                copy.write_row((uid, f"+1998{i:09d}", "!", f"bench {i}", "", "", True, False, 0, False, True,
                                False, False, "2026-01-01T00:00:00Z"))
    city_ids = {i + 1: create_city(slug=f"bench{i}", name=f"Bench {i}", lat=CITY_CENTRES[i][0],
                                   lng=CITY_CENTRES[i][1], radius_km=25).pk for i in range(args.cities)}
    split = traffic.t_us.min() + 10 * 60 * US
    history = traffic.t_us < split
    tick = time.perf_counter()
    copy_pings(traffic, history, user_ids, city_ids)
    settings.CROSSING_SHARDS = 1
    first = run_detection()
    print(f"history: {int(history.sum()):,} pings of {n_users:,} users in {args.cities} cities, loaded and "
          f"detected in {time.perf_counter() - tick:.0f} s ({first.changed:,} records)")
    copy_pings(traffic, ~history, user_ids, city_ids)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_saved_crossings AS SELECT * FROM crossings")
        cursor.execute("ANALYZE")
    saved = DetectorState.objects.values("xid_watermark", "received_after").get(pk=1)
    print(f"measured batch: {int((~history).sum()):,} new pings (one minute)")
    runs: dict[str, list[dict]] = {name: [] for name, _s, _w in CONFIGS}
    for round_ in range(args.repeat):
        for name, shards, workers in CONFIGS:
            fig = _measure(db_name, saved, shards, workers)
            runs[name].append(fig)
            print(f"  [{round_ + 1}] {name:<42} {fig['pings']:,} pings in {fig['wall_s']:6.2f} s wall -> "
                  f"{fig['pings_per_s_wall']:>7,} pings/s; CPU app {fig['app_cpu_s']:.2f} s + PostgreSQL "
                  f"{fig['db_cpu_s']:.2f} s = {fig['cpu_us_per_ping']:.0f} us/ping; store {fig['store_s']:.2f} s "
                  f"(locking rows {fig['store_rows_lock_s']:.2f} s, waiting for the cap's lock "
                  f"{fig['store_lock_wait_s']:.2f} s, under it {fig['store_cap_s'] + fig['commit_s']:.2f} s); "
                  f"load {fig['load_avg_1m']}, "
                  f"other processes {fig['other_cpu_s']} CPU s")
    best = {name: max(figs, key=lambda f: f["pings_per_s_wall"]) for name, figs in runs.items()}
    one, serial, parallel = (best[name] for name, _s, _w in CONFIGS)
    figures = {
        "runs": runs,
        "speedup_2_workers_vs_1_wall": round(parallel["pings_per_s_wall"] / one["pings_per_s_wall"], 2),
        "speedup_2_workers_vs_2_shards_serial_wall": round(parallel["pings_per_s_wall"]
                                                           / serial["pings_per_s_wall"], 2),
        "cpu_us_per_ping_1_shard": one["cpu_us_per_ping"],
        "cpu_us_per_ping_2_shards": parallel["cpu_us_per_ping"],
        "app_cpu_us_per_ping_2_shards": round(parallel["app_cpu_s"] / parallel["pings"] * 1e6, 1),
        "db_cpu_us_per_ping_2_shards": round(parallel["db_cpu_s"] / parallel["pings"] * 1e6, 1),
        # What runs one store at a time (the daily cap's count, the watermark and the commit, under the
        # cap's lock) bounds the throughput of any number of shards.
        "serial_store_us_per_ping": round((serial["store_cap_s"] + serial["commit_s"]) / serial["pings"] * 1e6, 1),
        "store_us_per_ping_2_shards": round(parallel["store_s"] / parallel["pings"] * 1e6, 1),
    }
    print(f"best of {args.repeat}: 2 workers / 1 worker = {figures['speedup_2_workers_vs_1_wall']}x wall "
          f"(goal >= 1.8x); 2 workers / 2 shards one after the other = "
          f"{figures['speedup_2_workers_vs_2_shards_serial_wall']}x; CPU per ping {one['cpu_us_per_ping']} us "
          f"(1 shard), {parallel['cpu_us_per_ping']} us (2 shards); stores {figures['serial_store_us_per_ping']} "
          f"us per ping one at a time (under the cap's lock)")
    return figures


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users-per-city", type=int, default=20_000)
    parser.add_argument("--cities", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    sys.path.insert(0, os.getcwd())
    figures = run(args)
    from bench.harness.common import write_result

    write_result("crossings-shards", figures,
                 "python -m bench.scenarios.crossings_shards: one minute of pings detected by 1 shard in 1 worker, "
                 "2 shards in 1 worker and 2 shards in 2 worker processes; wall from the start signal to the last "
                 "commit; CPU of the workers and their PostgreSQL backends",
                 scale={"users_per_city": args.users_per_city, "cities": args.cities, "repeat": args.repeat})


if __name__ == "__main__":
    main()
