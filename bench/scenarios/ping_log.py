"""Pings through a durable log (Redis Streams, AOF ``appendfsync always``) against the INSERT per request.

    python -m bench.scenarios.ping_log [--rounds 12 --batch 400 --users 1000 --counts 100,500]

Measured, not built: nothing here changes how the app ingests.  One process, real servers it
starts itself: the bench PostgreSQL and Redis of ``bench/harness/servers.py`` (instance
``BENCH_INSTANCE``, default ``pinglog``; PostgreSQL with ``synchronous_commit = on`` on the
measured connections, as deploy/postgresql/primary.conf) and a log Redis of its own under
``.data/bench/<instance>/log-redis`` with ``appendonly yes`` and ``appendfsync always``.
Each round runs, in rotating order, a batch of one-ping calls of

  A  ``locations.services.ingest_pings`` as it is: the last-ping ``SET ... GET`` on the cache
     Redis, judging, one INSERT (the request side of ``POST locations/`` today);
  B  the log path: the same judging, the last-ping ``SET ... GET`` and an ``XADD`` of the ping
     in ONE round trip (a script, below) to the log Redis with ``appendfsync always``;
  C  B with the log Redis switched to ``appendfsync everysec`` (what the fsync costs);

and after each of B and C the drain (log Redis back on ``always``): ``XREADGROUP COUNT n``,
the same judging again from what the entry carries, one multi-row INSERT per read into the
same partitioned table, commit, then ``XACK`` + ``XDEL`` in one round trip.  Per ping: the
thread CPU (``time.thread_time``), wall time and its p50/p99, the CPU of the PostgreSQL
backend serving the calls (``/proc/<pid>/task/*/schedstat``) and of the whole cluster, and
of each Redis server.  Figures: docs/benchmarks/locations.md ("Pings through a durable log").

Why a script and not a plain pipeline: the drain must store the status the request judged,
and that status depends on the previous last ping, which ``SET ... GET`` returns only in the
reply.  The script puts that previous value into the stream entry (and the request's clock),
so the drain judges again with the same inputs and gets the same status; both keys would
have to share a hash slot on Redis Cluster.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import redis

STREAM = "pinglog:pings"
GROUP = "drain"
CONSUMER = "drain-1"

#: One round trip: swap the user's last ping (as ``_LastPing.swap``) and log the ping with the
#: value it replaced and the request's clock (micros): everything the drain needs to judge it.
LOG_SCRIPT = """
local previous = redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2], 'GET')
redis.call('XADD', KEYS[2], '*', 'u', ARGV[3], 'p', ARGV[4], 'n', ARGV[5], 'v', previous or '')
return previous
"""


# ------------------------------------------------------------------------ servers


def start_log_redis(directory: Path, fsync: str = "always") -> redis.Redis:
    """A redis-server of its own in ``directory`` (Unix socket, AOF on with ``fsync``): the log.
    Returns a client; ``stop_log_redis`` ends it."""
    from devtools import embedded

    directory.mkdir(parents=True, exist_ok=True)
    sock = directory / "log.sock"
    if not (embedded.pid_alive(directory / "redis.pid") and sock.exists()):
        sock.unlink(missing_ok=True)
        embedded.start_redis_server(directory, {"port": "0", "unixsocket": str(sock), "unixsocketperm": "700",
                                                "appendonly": "yes", "appendfsync": fsync,
                                                "appendfilename": "log.aof"})
        deadline = time.monotonic() + 10
        while not sock.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the log redis-server did not start: see {directory / 'redis.log'}")
            time.sleep(0.02)
    client = redis.Redis(unix_socket_path=str(sock))
    deadline = time.monotonic() + 30
    while True:  # a restarted server answers LOADING until it has read its AOF back
        try:
            client.ping()
            break
        except (redis.BusyLoadingError, redis.ResponseError, redis.ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    client.config_set("appendfsync", fsync)
    return client


def log_redis_pid(directory: Path) -> int:
    return int((directory / "redis.pid").read_text().split()[0])


def stop_log_redis(directory: Path) -> None:
    from devtools import embedded

    pid_file = directory / "redis.pid"
    if not embedded.pid_alive(pid_file):
        return
    pid = int(pid_file.read_text().split()[0])
    os.kill(pid, 15)
    deadline = time.monotonic() + 10
    while embedded.pid_alive(pid_file) and time.monotonic() < deadline:
        time.sleep(0.02)


def durability(client: redis.Redis) -> dict:
    """What the log Redis says about its own durability (the figures are void without it)."""
    info = client.info("persistence")
    return {"appendonly": client.config_get("appendonly")["appendonly"],
            "appendfsync": client.config_get("appendfsync")["appendfsync"],
            "aof_enabled": info["aof_enabled"], "aof_last_write_status": info["aof_last_write_status"]}


def reset_stream(client: redis.Redis) -> None:
    client.delete(STREAM)
    client.xgroup_create(STREAM, GROUP, id="$", mkstream=True)


def _pid_cpu(pid: int | None) -> float:
    from bench.harness.cpu import own_cpu

    if not pid:
        return 0.0
    try:
        return own_cpu(psutil.Process(pid))
    except psutil.Error:
        return 0.0


def _pg_params(alias: str = "default") -> dict:
    """Connection parameters of Django's connection (for the drain's own connection)."""
    from django.db import connections

    conn = connections[alias]
    conn.ensure_connection()
    info = conn.connection.info
    return {"dbname": info.dbname, "host": info.host, "port": info.port, "user": info.user}


def backend_pid(cursor) -> int:
    cursor.execute("SELECT pg_backend_pid()")
    return cursor.fetchone()[0]


# ------------------------------------------------------------------------ the two paths


def _micros(at: datetime) -> int:
    return (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _from_micros(micros: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)


def _anchors_for(user_id, ping, previous, now: datetime) -> list:
    """The stored pings a one-ping batch is judged against (as ``services._stored_for``): the
    cached ones on the common path, the database otherwise."""
    from locations import services

    if previous is not None and (previous.accepted is None or previous.accepted.recorded_at < ping.recorded_at):
        return sorted({a.recorded_at: a for a in (previous.accepted, previous.matchable) if a is not None}.values())
    return services.IngestSteps.stored_neighbours(user_id, ping.recorded_at, ping.recorded_at, now).anchors


class LogPath:
    """The request side of ingest through the log: judging as today, the last ping and the
    ping itself written in one round trip to the log Redis, no PostgreSQL."""

    def __init__(self, client: redis.Redis):
        self.client = client
        self.script = client.register_script(LOG_SCRIPT)
        self.round_trips_ms: list[float] = []

    def ingest(self, user_id, ping, now: datetime | None = None) -> int:
        """Log one validated ping of ``user_id``; its status (as ``ingest_pings`` would store it
        before the user's ghost/verified state is applied)."""
        from django.utils import timezone

        from core.observability import metrics
        from locations import services
        from locations.models import PingStatus

        now = now or timezone.now()
        newest = services.IngestSteps.anchor(ping, matchable=True)
        guess = services.IngestSteps.Last(newest, newest)
        t0 = time.perf_counter()
        raw = self.script(keys=[services.IngestSteps.last_ping_key(user_id), STREAM],
                          args=[guess.encode(), max(1, guess.expires_in()), str(user_id), newest.encode(),
                                _micros(now)])
        self.round_trips_ms.append((time.perf_counter() - t0) * 1000)
        previous = services.IngestSteps.Last.decode(raw) if raw is not None else None
        anchors = _anchors_for(user_id, ping, previous, now)
        status = services.IngestSteps.judge([ping], anchors, now)[0]
        accepted = status != PingStatus.IMPLAUSIBLE
        metrics.count_pings(int(accepted), int(not accepted))
        mine = [services.IngestSteps.anchor(ping, status == PingStatus.MATCHABLE)] if accepted else []
        final = services.IngestSteps.newest([*anchors, *mine], previous)
        if final != guess:  # the rare path, as _LastPing.settle: put the right value back
            if final is None or final.expires_in() <= 0:
                self.client.delete(services.IngestSteps.last_ping_key(user_id))
            else:
                self.client.set(services.IngestSteps.last_ping_key(user_id), final.encode(), ex=final.expires_in())
        return status


class Drain:
    """The consumer: reads the stream in batches, judges each ping again from its entry, writes
    each batch with one INSERT on its own PostgreSQL connection, commits, then acknowledges."""

    def __init__(self, client: redis.Redis, pg_params: dict, synchronous_commit: str = "on"):
        import psycopg

        from locations import services

        self.client = client
        self.conn = psycopg.connect(**pg_params)
        with self.conn.cursor() as cursor:
            cursor.execute(f"SET synchronous_commit = {synchronous_commit}")
            self.backend_pid = backend_pid(cursor)
        self.conn.commit()
        self.sql = services.IngestSteps.insert_sql(many_users=True)  # one statement for many users' pings

    def close(self) -> None:
        self.conn.close()

    def _rows(self, entries) -> tuple[list, list, list]:
        from locations import services
        from locations.validation import PingIn

        users, pings, statuses = [], [], []
        for _id, fields in entries:
            user_id = fields[b"u"].decode()
            anchor = services.IngestSteps.Anchor.decode(fields[b"p"].decode())
            ping = PingIn(anchor.recorded_at, anchor.lat, anchor.lng, anchor.accuracy_m)
            now = _from_micros(int(fields[b"n"]))
            previous = services.IngestSteps.Last.decode(fields[b"v"]) if fields[b"v"] else None
            statuses.append(services.IngestSteps.judge([ping], _anchors_for(user_id, ping, previous, now), now)[0])
            users.append(user_id)
            pings.append(ping)
        return users, pings, statuses

    def run(self, count: int) -> int:
        """Drain everything logged so far, ``count`` entries per read; how many were written."""
        from locations import selectors, services

        _array = services.IngestSteps.array
        written = 0
        while True:
            reply = self.client.xreadgroup(GROUP, CONSUMER, {STREAM: ">"}, count=count)
            entries = reply[0][1] if reply else []
            if not entries:
                return written
            users, pings, statuses = self._rows(entries)
            city_ids = selectors.city_ids_for_points((p.lat, p.lng) for p in pings)
            with self.conn.cursor() as cursor:
                cursor.execute(self.sql, [
                    services.retention(), _array(users), _array(city_ids),
                    _array([p.recorded_at.isoformat() for p in pings]), _array([repr(p.lat) for p in pings]),
                    _array([repr(p.lng) for p in pings]),
                    _array(["NULL" if p.accuracy_m is None else repr(p.accuracy_m) for p in pings]),
                    _array([int(s) for s in statuses]),
                ])
                written += cursor.rowcount
            self.conn.commit()  # durable in PostgreSQL before the entries leave the log
            ids = [entry_id for entry_id, _ in entries]
            pipe = self.client.pipeline(transaction=False)
            pipe.xack(STREAM, GROUP, *ids)
            pipe.xdel(STREAM, *ids)
            pipe.execute()


# ------------------------------------------------------------------------ users and clocks


def ensure_users(count: int) -> list:
    """``count`` verified bench users (made once, reused by later runs) with no pings."""
    from accounts.models import User
    from locations.models import Ping

    have = list(User.objects.filter(display_name__startswith="Pinglog ").order_by("display_name")[:count])
    if len(have) < count:
        User.objects.bulk_create([User(phone=f"+1999{i:07d}", display_name=f"Pinglog {i:07d}", is_verified=True)
                                  for i in range(len(have), count)])
        have = list(User.objects.filter(display_name__startswith="Pinglog ").order_by("display_name")[:count])
    ids = [u.pk for u in have]
    Ping.objects.using("default").filter(user_id__in=ids).delete()
    return ids


def forget_last_pings(clients, user_ids) -> None:
    """No cached last ping from an earlier run (its pings are deleted): each user starts cold."""
    from locations import services

    keys = [services.IngestSteps.last_ping_key(u) for u in user_ids]
    for client in clients:
        for i in range(0, len(keys), 500):
            client.delete(*keys[i:i + 500])


@dataclass
class Clocks:
    """Each user's phone: one ping every ``step`` s from ``start``, walking a little, round robin."""

    user_ids: list
    start: datetime
    step: float = 21.0
    lat: float = 52.52
    lng: float = 13.405
    turn: int = 0
    at: dict = field(default_factory=dict)

    def next(self):
        from locations.validation import PingIn

        i = self.turn % len(self.user_ids)
        self.turn += 1
        user_id = self.user_ids[i]
        at = self.at.get(user_id, self.start + timedelta(seconds=i % 20))
        self.at[user_id] = at + timedelta(seconds=self.step)
        walk = (self.turn // len(self.user_ids)) * 0.00005
        return user_id, PingIn(at, self.lat + (i % 50) * 0.001 + walk, self.lng + (i // 50) * 0.001, 8.0)


# ------------------------------------------------------------------------ measuring


@dataclass
class Sample:
    pings: int
    thread_ms: float
    wall_ms: float
    latencies_ms: list
    cpu_ms: dict  # tier -> CPU ms over the batch


class Meter:
    """CPU of the servers around a batch: the PostgreSQL backends named, the whole cluster, each Redis."""

    def __init__(self, pids: dict[str, int | None], postmaster: int | None):
        self.pids, self.postmaster = pids, postmaster

    def sample(self) -> dict[str, float]:
        from bench.harness.cpu import tree_cpu_seconds

        out = {name: _pid_cpu(pid) for name, pid in self.pids.items()}
        if self.postmaster:
            out["pg_cluster"] = tree_cpu_seconds(self.postmaster)
        return out

    def run(self, pings: list, call) -> Sample:
        before = self.sample()
        latencies = []
        t0, w0 = time.thread_time(), time.perf_counter()
        for user_id, ping in pings:
            s = time.perf_counter()
            call(user_id, ping)
            latencies.append((time.perf_counter() - s) * 1000)
        thread, wall = time.thread_time() - t0, time.perf_counter() - w0
        after = self.sample()
        return Sample(len(pings), thread * 1000, wall * 1000, latencies,
                      {k: (after[k] - before[k]) * 1000 for k in after})

    def drain(self, drain: Drain, count: int) -> Sample:
        before = self.sample()
        t0, w0 = time.thread_time(), time.perf_counter()
        n = drain.run(count)
        thread, wall = time.thread_time() - t0, time.perf_counter() - w0
        after = self.sample()
        return Sample(n, thread * 1000, wall * 1000, [], {k: (after[k] - before[k]) * 1000 for k in after})


def _quantile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else (values[0] if values else 0.0)


def summarise(samples: list[Sample], round_trips: list[float] | None = None) -> dict:
    """Medians over the batches of the per-ping figures (µs), latency quantiles over all pings."""
    def per_ping(value) -> float:
        return round(statistics.median(value(s) / s.pings * 1000 for s in samples if s.pings), 1)

    tiers = samples[0].cpu_ms.keys() if samples else []
    out = {"batches": len(samples), "pings": sum(s.pings for s in samples),
           "app_thread_cpu_us_per_ping": per_ping(lambda s: s.thread_ms),
           "wall_us_per_ping": per_ping(lambda s: s.wall_ms),
           **{f"{tier}_cpu_us_per_ping": per_ping(lambda s, t=tier: s.cpu_ms[t]) for tier in tiers}}
    out["app_thread_cpu_us_per_ping_by_batch"] = [round(s.thread_ms / s.pings * 1000, 1) for s in samples if s.pings]
    latencies = [x for s in samples for x in s.latencies_ms]
    if latencies:
        out["call_p50_ms"], out["call_p99_ms"] = round(_quantile(latencies, 50), 3), round(_quantile(latencies, 99), 3)
    if round_trips:
        out["redis_round_trip_p50_ms"] = round(_quantile(round_trips, 50), 3)
        out["redis_round_trip_p99_ms"] = round(_quantile(round_trips, 99), 3)
    return out


def measure(*, log_client: redis.Redis, log_pid: int | None, user_ids: list, rounds: int, batch: int,
            counts: list[int], synchronous_commit: str = "on", cache_pid: int | None = None,
            postmaster: int | None = None, progress=None, clocks: Clocks | None = None) -> dict:
    """The side-by-side run (Django set up, cities and partitions made); its figures."""
    from django.db import connections
    from django.utils import timezone

    from locations import services

    reset_stream(log_client)
    with connections["default"].cursor() as cursor:
        cursor.execute(f"SET synchronous_commit = {synchronous_commit}")
        request_backend = backend_pid(cursor)
    drain = Drain(log_client, _pg_params(), synchronous_commit)
    log = LogPath(log_client)
    meter = Meter({"pg_backend_request": request_backend, "pg_backend_drain": drain.backend_pid,
                   "redis_cache": cache_pid, "redis_log": log_pid}, postmaster)
    clocks = clocks or Clocks(user_ids, timezone.now() - timedelta(seconds=500))

    def current(user_id, ping):
        services.ingest_pings(user_id, [ping])

    def set_fsync(mode: str) -> None:
        log_client.config_set("appendfsync", mode)

    variants = {
        "A": ("ingest_pings today (SET ... GET on the cache Redis, INSERT per ping)", current, None),
        "B": ("log path, appendfsync always (script: SET ... GET + XADD, no PostgreSQL)", log.ingest, "always"),
        "C": ("log path, appendfsync everysec", log.ingest, "everysec"),
    }
    samples: dict[str, list[Sample]] = {k: [] for k in variants}
    trips: dict[str, list[float]] = {"B": [], "C": []}
    drains: dict[int, list[Sample]] = {c: [] for c in counts}
    order = list(variants)
    try:
        for _ in user_ids:  # each user's first ping on either Redis finds no last ping (the cold path)
            current(*clocks.next())
            log.ingest(*clocks.next())
        drain.run(max(counts))
        for r in range(rounds + 1):  # round 0 warms every path (each user's first ping is cold)
            turn = order[r % 3:] + order[:r % 3]
            count = counts[r % len(counts)]
            for key in turn:
                _label, call, fsync = variants[key]
                if fsync:
                    set_fsync(fsync)
                pings = [clocks.next() for _ in range(batch)]
                log.round_trips_ms = []
                sample = meter.run(pings, call)
                if fsync:
                    set_fsync("always")  # the drain's XACK/XDEL as in production
                    drained = meter.drain(drain, count)
                    if r:
                        drains[count].append(drained)
                        trips[key] += log.round_trips_ms
                if r:
                    samples[key].append(sample)
            if progress:
                progress(r, rounds)
        set_fsync("always")
        durable = durability(log_client)
        with connections["default"].cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            request_sync = cursor.fetchone()[0]
    finally:
        drain.close()
        with connections["default"].cursor() as cursor:
            cursor.execute("RESET synchronous_commit")
    figures = {
        "paths": {key: {"path": variants[key][0], **summarise(samples[key], trips.get(key))} for key in variants},
        "drain": {str(c): {"count": c, **summarise(drains[c])} for c in counts},
        "log_redis": durable, "pg_synchronous_commit": request_sync,
    }
    figures["summary"] = _ratios(figures)
    return figures


def measure_concurrent(*, log_client: redis.Redis, log_pid: int | None, clocks: Clocks, rounds: int, batch: int,
                       clients: int, synchronous_commit: str = "on", cache_pid: int | None = None,
                       postmaster: int | None = None) -> dict:
    """A, B and C again with ``clients`` threads calling at once (each user on one thread), as
    a server's workers would: both servers then fsync several callers' writes at once (group
    commit).  CPU per ping: the callers' threads, the whole PostgreSQL cluster, each Redis.
    Run after ``measure`` (same users, their clocks going on); the drain runs unmeasured."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    from locations import services

    reset_stream(log_client)
    drain = Drain(log_client, _pg_params(), synchronous_commit)
    log = LogPath(log_client)
    meter = Meter({"redis_cache": cache_pid, "redis_log": log_pid}, postmaster)
    slot = {u: i % clients for i, u in enumerate(clocks.user_ids)}

    def current(user_id, ping):
        services.ingest_pings(user_id, [ping])

    opened: dict[int, object] = {}

    def work(call, pings) -> tuple[float, list[float]]:
        conn = connections["default"]  # this thread's own, kept (warm) for the whole phase
        if id(conn) not in opened:
            conn.inc_thread_sharing()  # closed from the main thread at the end
            opened[id(conn)] = conn
        with conn.cursor() as cursor:  # outside the clock
            cursor.execute(f"SET synchronous_commit = {synchronous_commit}")
        latencies = []
        t0 = time.thread_time()
        for user_id, ping in pings:
            s = time.perf_counter()
            call(user_id, ping)
            latencies.append((time.perf_counter() - s) * 1000)
        return (time.thread_time() - t0) * 1000, latencies

    variants = {"A": (current, None), "B": (log.ingest, "always"), "C": (log.ingest, "everysec")}
    samples: dict[str, list[Sample]] = {k: [] for k in variants}
    order = list(variants)
    pool = ThreadPoolExecutor(max_workers=clients)
    try:
        for r in range(rounds + 1):
            for key in order[r % 3:] + order[:r % 3]:
                call, fsync = variants[key]
                if fsync:
                    log_client.config_set("appendfsync", fsync)
                pings = [clocks.next() for _ in range(batch)]
                parts = [[p for p in pings if slot[p[0]] == j] for j in range(clients)]
                before, w0 = meter.sample(), time.perf_counter()
                done = list(pool.map(lambda part, call=call: work(call, part), parts))
                wall, after = time.perf_counter() - w0, meter.sample()
                if fsync:
                    log_client.config_set("appendfsync", "always")
                    drain.run(500)
                if r:
                    samples[key].append(Sample(batch, sum(t for t, _ in done), wall * 1000,
                                               [x for _, lat in done for x in lat],
                                               {k: (after[k] - before[k]) * 1000 for k in after}))
    finally:
        pool.shutdown(wait=True)
        drain.close()
        for conn in opened.values():
            conn.close()  # type: ignore[attr-defined]
    paths = {key: summarise(samples[key]) for key in variants}
    return {"clients": clients, "paths": paths,
            "request_app_cpu_ratio_log_over_today_paired_median": paired(paths["A"], paths["B"]),
            "request_app_cpu_ratio_everysec_over_always_paired_median": paired(paths["B"], paths["C"])}


def paired(old: dict, new: dict) -> float | None:
    """Median over the rounds of new / old app CPU per ping (None without batches)."""
    pairs = list(zip(old["app_thread_cpu_us_per_ping_by_batch"], new["app_thread_cpu_us_per_ping_by_batch"],
                     strict=True))
    return round(statistics.median(n / o for o, n in pairs), 3) if pairs else None


def _ratios(figures: dict) -> dict:
    a, b, c = (figures["paths"][k] for k in "ABC")
    out = {
        "request_app_cpu_ratio_log_over_today": round(b["app_thread_cpu_us_per_ping"]
                                                      / a["app_thread_cpu_us_per_ping"], 3),
        "request_wall_ratio_log_over_today": round(b["wall_us_per_ping"] / a["wall_us_per_ping"], 3),
        "request_app_cpu_saved_us": round(a["app_thread_cpu_us_per_ping"] - b["app_thread_cpu_us_per_ping"], 1),
        "log_redis_cpu_us_per_ping_always_vs_everysec": [b.get("redis_log_cpu_us_per_ping"),
                                                         c.get("redis_log_cpu_us_per_ping")],
    }
    # Round by round (the batches of one round ran back to back, under the same load).
    out["request_app_cpu_ratio_log_over_today_paired_median"] = paired(a, b)
    out["request_app_cpu_ratio_everysec_over_always_paired_median"] = paired(b, c)
    for count, d in figures["drain"].items():
        if d["batches"]:
            out[f"drain_{count}_app_plus_pg_backend_us_per_ping"] = round(
                d["app_thread_cpu_us_per_ping"] + d["pg_backend_drain_cpu_us_per_ping"], 1)
    out["today_pg_backend_us_per_ping"] = a.get("pg_backend_request_cpu_us_per_ping")
    return out


# ------------------------------------------------------------------------ command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12, help="measured rounds (one batch per path each)")
    parser.add_argument("--batch", type=int, default=400, help="one-ping calls per batch")
    parser.add_argument("--users", type=int, default=1000, help="bench users the pings go round")
    parser.add_argument("--counts", default="100,500", help="XREADGROUP COUNT of the drain, alternating by round")
    parser.add_argument("--synchronous-commit", default="on", choices=["on", "off"],
                        help="PostgreSQL synchronous_commit of the measured connections (production: on)")
    parser.add_argument("--clients", type=int, default=8,
                        help="threads calling at once in a second phase (group commit); 1 skips it")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.counts.split(",") if c]
    os.environ.setdefault("BENCH_INSTANCE", "pinglog")
    from bench.harness import servers
    from bench.harness.common import write_result
    from bench.harness.in_process import django_on_bench

    django_on_bench()
    from bench.scenarios.locations_ingest import ensure_cities

    ensure_cities()
    log_dir = servers.redis_dir().parent / "log-redis"
    stop_log_redis(log_dir)
    (log_dir / "log.aof").unlink(missing_ok=True)  # a fresh log each run
    log_client = start_log_redis(log_dir)
    started = datetime.now(UTC).replace(microsecond=0).isoformat()
    load_before = os.getloadavg()
    try:
        from core.cache.client import redis_client

        user_ids = ensure_users(args.users)
        forget_last_pings([redis_client(), log_client], user_ids)
        print(f"{len(user_ids)} users; {args.rounds} rounds of {args.batch} pings per path; drain COUNT {counts}; "
              f"load average {load_before[0]:.2f} {load_before[1]:.2f}; {started}", flush=True)
        from django.utils import timezone

        clocks = Clocks(user_ids, timezone.now() - timedelta(seconds=500))
        figures = measure(log_client=log_client, log_pid=log_redis_pid(log_dir), user_ids=user_ids,
                          rounds=args.rounds, batch=args.batch, counts=counts,
                          synchronous_commit=args.synchronous_commit, cache_pid=servers.redis_pid(),
                          postmaster=servers.postmaster_pid(), clocks=clocks,
                          progress=lambda r, n: print(f"round {r}/{n} load {os.getloadavg()[0]:.2f}", flush=True))
        if args.clients > 1:
            figures["concurrent"] = measure_concurrent(
                log_client=log_client, log_pid=log_redis_pid(log_dir), clocks=clocks, rounds=args.rounds,
                batch=args.batch, clients=args.clients, synchronous_commit=args.synchronous_commit,
                cache_pid=servers.redis_pid(), postmaster=servers.postmaster_pid())
        ensure_users(args.users)  # deletes this run's pings
    finally:
        stop_log_redis(log_dir)
    figures["load_average_before_after"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
    figures["started_utc"] = started
    how = (f"python -m bench.scenarios.ping_log --rounds {args.rounds} --batch {args.batch} --users {args.users} "
           f"--counts {args.counts} --synchronous-commit {args.synchronous_commit} --clients {args.clients}")
    path = write_result("ping-log", figures, how, {"rounds": args.rounds, "batch": args.batch, "users": args.users,
                                                        "clients": args.clients})
    print(json.dumps(figures, indent=2))
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
