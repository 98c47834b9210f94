"""App CPU per request of POST locations/ (lean path vs DRF) and GET me/ (response cache vs none), in one process.

    python -m bench.scenarios.ping_me_paths [--batches 12 --batch 200 --users 200]

One Django WSGI handler on the harness's seeded bench database (seed it with `make bench-closed`).
Batches alternate between the old and the new path of each endpoint, switched by the class
attributes ``LocationsView.lean_post`` and ``MeView.response_cache``, so a noisy machine slows
both alike; the figure is the thread CPU time per request (no HTTP server, no client), median
over the batches, and the ratio.  Each user's pings go on from their last stored ping: same place,
21 s apart and live (as a phone's every 30 s, so judged matchable: the common path, two Redis
round trips and one INSERT); users whose last ping leaves no room for theirs are skipped.  ``GET me/ (miss)`` bumps
every user's profile version before each batch (outside the timing): each request then
misses and stores.  Figures: docs/benchmarks/performance.md ("What was changed").
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from datetime import UTC, datetime, timedelta

import orjson

from bench.harness.in_process import alternate, django_on_bench, thread_ms, wsgi_environ


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=12, help="batches per path and endpoint (alternating)")
    parser.add_argument("--batch", type=int, default=200, help="requests per batch")
    parser.add_argument("--users", type=int, default=400, help="signed-in users (at least --batch for the miss row)")
    args = parser.parse_args(argv)
    django_on_bench()
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection

    from accounts import selectors as account_selectors
    from accounts import services
    from accounts.api.views import MeView
    from accounts.models import User
    from core.cache import keys as cachekeys
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
    per_user = -(-(2 * 50 + 2 * args.batches * args.batch) // args.users)
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

    # name -> (request maker, switch, before each batch)
    endpoints = {
        "POST /api/v1/locations/ (one ping)": (ping, set_ping, None),
        "GET /api/v1/me/ (stored answer)": (me, set_me, None),
        "GET /api/v1/me/ (miss: version bumped)": (me, set_me, bump_all),
    }

    def batch(make, switch, before, on: bool) -> float:
        switch(on)
        if before is not None:
            before()
        return thread_ms(handler, [make(i) for i in range(args.batch)])

    print(f"{len(users)} users; {args.batches} alternating batches of {args.batch} per path and endpoint; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    rows = []
    for name, (make, switch, before) in endpoints.items():
        mn, mo = alternate(lambda make=make, switch=switch, before=before: batch(make, switch, before, True),
                           lambda make=make, switch=switch, before=before: batch(make, switch, before, False),
                           args.batches)
        switch(True)
        rows.append((name, mn, mo))
        print(f"{name:40} new {mn:.3f} ms   old {mo:.3f} ms   ratio {mn / mo:.3f}", flush=True)
    print("\n| endpoint | app CPU ms, new path | old path | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for name, mn, mo in rows:
        print(f"| {name} | {mn:.3f} | {mo:.3f} | {mn / mo:.2f} |")
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
