"""App and database CPU per request of POST locations/ (lean path vs DRF; one ping stored as a row
of parameters vs arrays) and GET me/ (response cache vs none), in one process.

    python -m bench.scenarios.ping_me_paths [--batches 12 --batch 200 --users 200] [--only ping,row]

One Django WSGI handler on the harness's seeded bench database (seed it with `make bench-closed`).
Batches alternate between the old and the new path of each endpoint, switched by the class
attributes ``LocationsView.lean_post`` and ``MeView.response_cache`` and the module attribute
``locations.services.ONE_PING_ROW``, so a noisy machine slows both alike; the figures are the
thread CPU time per request (no HTTP server, no client) and the bench PostgreSQL cluster's CPU
per request (every process of it, as the closed loop bills its db tier), medians over the
batches, and their ratios.  Each user's pings go on from their last stored ping: same place,
21 s apart and live (as a phone's every 30 s, so judged matchable: the common path, two Redis
round trips and one INSERT); users whose last ping leaves no room for theirs are skipped.  ``GET me/ (miss)`` bumps
every user's profile version before each batch (outside the timing): each request then
misses and stores.  Figures: docs/benchmarks/performance.md ("What was changed").
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
from datetime import UTC, datetime, timedelta

import orjson

from bench.harness import servers
from bench.harness.cpu import tree_cpu_seconds
from bench.harness.in_process import alternate, django_on_bench, thread_ms, wsgi_environ


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=12, help="batches per path and endpoint (alternating)")
    parser.add_argument("--batch", type=int, default=200, help="requests per batch")
    parser.add_argument("--users", type=int, default=400, help="signed-in users (at least --batch for the miss row)")
    parser.add_argument("--only", default="", help="comma-separated rows: ping, row, me, me_miss (default: all)")
    args = parser.parse_args(argv)
    # A sync worker's pool, as deploy/gunicorn.conf.py sizes it: with the settings' 25 connections
    # one thread's requests rotate over 25 backends, each parsing and planning a statement anew
    # until it has run it 5 times (psycopg's prepare threshold), which a short run bills to the path.
    django_on_bench(DB_POOL_MIN_SIZE="1", DB_POOL_MAX_SIZE="2")
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection

    from accounts import selectors as account_selectors
    from accounts import services
    from accounts.api.views import MeView
    from accounts.models import User
    from core.cache import keys as cachekeys
    from locations import services as location_services
    from locations.api.views import LocationsView

    candidates = list(User.objects.filter(is_active=True, is_staff=False)
                      .exclude(display_name__startswith="Bench ").order_by("pk")[:args.users * 4])
    # A phone's clock per user: from the last stored ping (where the user is), 21 s apart,
    # starting inside the live window (a ping far from the last one would be judged implausible),
    # and never more than 5 minutes ahead (refused).
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT ON (user_id) user_id, recorded_at, lat, lng FROM locations_ping "
                       "WHERE user_id = ANY(%s) ORDER BY user_id, recorded_at DESC", [[u.pk for u in candidates]])
        last = {row[0]: row[1:] for row in cursor.fetchall()}
    now = datetime.now(UTC)
    live = now - timedelta(seconds=550)
    only = [k.strip() for k in args.only.split(",") if k.strip()] or ["ping", "row", "me", "me_miss"]
    ping_rows = sum(1 for key in only if key in ("ping", "row"))  # each: a warm-up and --batches batches per side
    per_user = -(-(2 * (args.batches + 1) * args.batch * ping_rows) // args.users)
    latest_start = now + timedelta(seconds=300 - 21 * per_user - 30)
    users, clocks = [], []
    for user in candidates:
        at, lat, lng = last.get(user.pk, (live, 52.52, 13.405))
        if at + timedelta(seconds=21) > latest_start or len(users) == args.users:
            continue
        users.append(user)
        clocks.append([max(live, at + timedelta(seconds=21)), lat, lng])
    if len(users) < args.users:
        raise SystemExit("the bench database has too few seeded users with room for their pings: seed it with "
                         "`make bench-closed`, or wait a few minutes after the last run")
    tokens = [services.open_session(u, user_agent="bench ping/me", ip="127.0.0.1")[1] for u in users]
    handler = WSGIHandler()
    turn = itertools.count()

    def ping(_i: int) -> dict:
        u = next(turn) % len(users)  # round robin over every user, whatever the batch size
        clock = clocks[u]
        body = orjson.dumps({"pings": [{"lat": clock[1], "lng": clock[2], "recorded_at": clock[0].isoformat()}]})
        clock[0] += timedelta(seconds=21)
        return wsgi_environ("POST", "/api/v1/locations/", tokens[u], body)

    def me(i: int) -> dict:
        return wsgi_environ("GET", "/api/v1/me/", tokens[i % len(users)])

    def bump_all() -> None:
        cachekeys.bump_many((account_selectors.PROFILE_NS, u.pk) for u in users)

    def set_ping(lean: bool) -> None:
        LocationsView.lean_post = lean

    def set_me(cached: bool) -> None:
        MeView.response_cache = cached

    def set_row(one_row: bool) -> None:
        location_services.ONE_PING_ROW = one_row

    # key -> (name, request maker, switch, before each batch)
    endpoints = {
        "ping": ("POST /api/v1/locations/ (one ping): lean path vs DRF", ping, set_ping, None),
        "row": ("POST /api/v1/locations/ (one ping): one-row INSERT vs arrays", ping, set_row, None),
        "me": ("GET /api/v1/me/ (stored answer)", me, set_me, None),
        "me_miss": ("GET /api/v1/me/ (miss: version bumped)", me, set_me, bump_all),
    }
    postmaster = servers.postmaster_pid()
    db_ms: dict[tuple[str, bool], list[float]] = {}

    def batch(key, make, switch, before, on: bool) -> float:
        switch(on)
        if before is not None:
            before()
        environs = [make(i) for i in range(args.batch)]
        db0 = tree_cpu_seconds(postmaster) if postmaster else 0.0
        app = thread_ms(handler, environs)
        db = (tree_cpu_seconds(postmaster) - db0) if postmaster else 0.0
        db_ms.setdefault((key, on), []).append(db / args.batch * 1000)
        return app

    print(f"{len(users)} users; {args.batches} alternating batches of {args.batch} per path and endpoint; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    rows = []
    for key in only:
        name, make, switch, before = endpoints[key]
        mn, mo = alternate(lambda k=key, m=make, s=switch, b=before: batch(k, m, s, b, True),
                           lambda k=key, m=make, s=switch, b=before: batch(k, m, s, b, False),
                           args.batches)
        switch(True)
        dn, do = (statistics.median(db_ms[key, on][1:]) for on in (True, False))  # the warm-up batch left out
        rows.append((name, mn, mo, dn, do))
        print(f"{name:60} app new {mn:.3f} old {mo:.3f} ratio {mn / mo:.3f}   db new {dn:.3f} old {do:.3f} "
              f"ratio {dn / do if do else float('nan'):.3f}", flush=True)
    print("\n| endpoint | app CPU ms, new path | old path | ratio | db CPU ms, new | old | ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, mn, mo, dn, do in rows:
        db_ratio = f"{dn / do:.2f}" if do else "-"
        print(f"| {name} | {mn:.3f} | {mo:.3f} | {mn / mo:.2f} | {dn:.3f} | {do:.3f} | {db_ratio} |")
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
