"""bench/scenarios/ping_log.py: the log it measures is durable as configured, the drain writes
exactly what was logged (with the statuses ``ingest_pings`` gives the same pings), and a short
side-by-side run produces every figure."""

from __future__ import annotations

import os
import signal
from datetime import timedelta

import psutil
import pytest
from django.utils import timezone

from bench.scenarios import ping_log
from locations import services
from locations.models import Ping, PingStatus
from locations.validation import PingIn
from tests.factories import make_city, make_verified_user
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)  # the drain writes through a connection of its own


@pytest.fixture
def log_redis(tmp_path):
    directory = tmp_path / "log"
    client = ping_log.start_log_redis(directory)
    ping_log.reset_stream(client)
    yield directory, client
    ping_log.stop_log_redis(directory)


def _rows(user_ids) -> list[tuple]:
    return sorted(Ping.objects.using("default").filter(user_id__in=user_ids)
                  .values_list("recorded_at", "lat", "lng", "accuracy_m", "status"))


def test_logged_pings_survive_a_crash_of_the_log_redis_and_the_drain_writes_what_ingest_pings_would(log_redis):
    directory, client = log_redis
    assert ping_log.durability(client) == {"appendonly": "yes", "appendfsync": "always", "aof_enabled": 1,
                                           "aof_last_write_status": "ok"}
    make_city("berlin")
    services.ensure_partitions(days_ahead=1)
    logged_user, twin = make_verified_user(), make_verified_user()
    ghost, ghost_twin = make_verified_user(ghost_mode=True), make_verified_user(ghost_mode=True)
    now = timezone.now()
    t0 = now - timedelta(seconds=400)
    walk = [PingIn(t0, 52.52, 13.405, 8.0),
            PingIn(t0 + timedelta(seconds=30), 52.5202, 13.405, 8.0),   # matchable
            PingIn(t0 + timedelta(seconds=35), 52.5203, 13.405, 8.0),   # dense: 5 s after a matchable ping
            PingIn(t0 + timedelta(seconds=60), 48.8566, 2.3522, 8.0),   # Paris a minute later: implausible
            PingIn(t0 + timedelta(seconds=90), 52.5205, 13.405, None)]
    old = PingIn(now - timedelta(seconds=900), 52.52, 13.40, 8.0)  # first ping of its user, and late
    log = ping_log.LogPath(client)
    statuses = [log.ingest(logged_user.pk, p, now) for p in walk] + [log.ingest(ghost.pk, old, now)]
    assert statuses == [PingStatus.MATCHABLE, PingStatus.MATCHABLE, PingStatus.DENSE, PingStatus.IMPLAUSIBLE,
                        PingStatus.MATCHABLE, PingStatus.LATE]
    assert Ping.objects.using("default").count() == 0  # the request side never touched PostgreSQL

    # A crash of the log Redis (SIGKILL: no shutdown, no rewrite) loses no acknowledged ping.
    pid = ping_log.log_redis_pid(directory)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not psutil.pid_exists(pid), what="the log Redis to die")
    client = ping_log.start_log_redis(directory)
    assert client.xlen(ping_log.STREAM) == len(statuses)

    drain = ping_log.Drain(client, ping_log._pg_params())
    try:
        assert drain.run(count=100) == len(statuses)  # one read: judged from the entries, not the database
    finally:
        drain.close()
    assert client.xlen(ping_log.STREAM) == 0
    assert client.xpending(ping_log.STREAM, ping_log.GROUP)["pending"] == 0

    for p in walk:  # the same pings through today's path, for twin users
        services.ingest_pings(twin.pk, [p], now=now)
    services.ingest_pings(ghost_twin.pk, [old], now=now)
    logged = [(p.recorded_at, p.lat, p.lng, p.accuracy_m, int(s)) for p, s in zip(walk, statuses[:5], strict=True)]
    assert _rows([logged_user.pk]) == sorted(logged) == _rows([twin.pk])
    assert _rows([ghost.pk]) == [(old.recorded_at, old.lat, old.lng, old.accuracy_m, PingStatus.LATE)]
    assert _rows([ghost.pk]) == _rows([ghost_twin.pk])


def test_a_short_side_by_side_run_produces_every_figure_and_stores_every_ping(log_redis):
    directory, client = log_redis
    make_city("berlin")
    services.ensure_partitions(days_ahead=1)
    users = [make_verified_user().pk for _ in range(6)]
    rounds, batch = 2, 6
    figures = ping_log.measure(log_client=client, log_pid=ping_log.log_redis_pid(directory), user_ids=users,
                               rounds=rounds, batch=batch, counts=[4, 50])
    assert figures["log_redis"]["appendonly"] == "yes"
    assert figures["log_redis"]["appendfsync"] == "always"
    assert figures["pg_synchronous_commit"] == "on"
    for key in "ABC":
        row = figures["paths"][key]
        assert row["batches"] == rounds and row["pings"] == rounds * batch
        assert row["app_thread_cpu_us_per_ping"] > 0 and row["wall_us_per_ping"] > 0
        assert row["call_p99_ms"] >= row["call_p50_ms"] > 0
    assert figures["paths"]["A"]["pg_backend_request_cpu_us_per_ping"] > 0  # the INSERT per ping
    assert figures["paths"]["B"]["pg_backend_request_cpu_us_per_ping"] == 0  # none on the log path
    assert figures["paths"]["B"]["redis_log_cpu_us_per_ping"] > 0
    assert figures["paths"]["B"]["redis_round_trip_p99_ms"] > 0
    assert sum(d["pings"] for d in figures["drain"].values()) == 2 * rounds * batch
    assert all(d["pg_backend_drain_cpu_us_per_ping"] > 0 for d in figures["drain"].values())
    assert set(figures["summary"]) >= {"request_app_cpu_ratio_log_over_today", "today_pg_backend_us_per_ping",
                                       "drain_4_app_plus_pg_backend_us_per_ping"}
    # Every ping of every path is in PostgreSQL once: the warm-up (one per user on each path),
    # the unmeasured first round and the measured ones; nothing is left in the log.
    assert Ping.objects.using("default").filter(user_id__in=users).count() == 2 * len(users) + 3 * batch * (rounds + 1)
    assert client.xlen(ping_log.STREAM) == 0

    # The concurrent phase: the same users, their clocks going on, three threads at once.
    clocks = ping_log.Clocks(users, timezone.now() - timedelta(seconds=100))
    concurrent = ping_log.measure_concurrent(log_client=client, log_pid=ping_log.log_redis_pid(directory),
                                             clocks=clocks, rounds=rounds, batch=batch, clients=3)
    for key in "ABC":
        row = concurrent["paths"][key]
        assert row["pings"] == rounds * batch and row["app_thread_cpu_us_per_ping"] > 0
    assert concurrent["paths"]["B"]["redis_log_cpu_us_per_ping"] > 0
    assert Ping.objects.using("default").filter(user_id__in=users).count() == (
        2 * len(users) + 6 * batch * (rounds + 1))
    assert client.xlen(ping_log.STREAM) == 0
