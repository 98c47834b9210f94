"""App CPU per request with and without the browser-only middleware on API requests, in one process.

    python -m bench.scenarios.api_middleware [--batches 12 --batch 200]

Two Django WSGI handlers in one process, on the harness's seeded bench database: the project's
middleware (API requests skip sessions, CSRF, auth, messages and the admin's two; see
core/api/middleware.py) and the flat list every request ran before.  Batches of requests
alternate between the two, so a noisy machine slows both alike; the figure is the thread
CPU time per request (no HTTP server, no client), median over the batches, and the ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime, timedelta

import orjson

from bench.harness.in_process import alternate, django_on_bench, thread_ms, wsgi_environ


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=12, help="batches per handler and endpoint (alternating)")
    parser.add_argument("--batch", type=int, default=200, help="requests per batch")
    args = parser.parse_args(argv)
    django_on_bench(BENCH_FLOOR_VIEWS="1")
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.utils import override_settings

    from accounts import services
    from accounts.models import User

    flat = [name for entry in settings.MIDDLEWARE for name in settings.WEB_ONLY_MIDDLEWARE.get(
        {"core.api.middleware.WebOnlyRequestMiddleware": "request",
         "core.api.middleware.WebOnlyAdminMiddleware": "admin"}.get(entry, ""), [entry])]
    lean = WSGIHandler()
    with override_settings(MIDDLEWARE=flat):
        before = WSGIHandler()
        before.load_middleware()
    users = list(User.objects.filter(is_active=True, is_staff=False)
                 .exclude(display_name__startswith="Bench ").order_by("pk")[:50])
    if not users:
        raise SystemExit("the bench database has no seeded users: run `make bench-closed` (it seeds) first")
    tokens = [services.open_session(u, user_agent="bench middleware", ip="127.0.0.1")[1] for u in users]
    clock = iter(range(10**9))
    start = datetime.now(UTC) - timedelta(minutes=1)

    def ping_body() -> bytes:
        at = start + timedelta(microseconds=next(clock) * 1000)
        return orjson.dumps({"pings": [{"lat": 52.52, "lng": 13.405, "recorded_at": at.isoformat()}]})

    endpoints = {
        "GET /bench/floor/drf/": lambda i: wsgi_environ("GET", "/bench/floor/drf/", ""),
        "GET /api/v1/me/": lambda i: wsgi_environ("GET", "/api/v1/me/", tokens[i % len(tokens)]),
        "GET /api/v1/crossings/": lambda i: wsgi_environ("GET", "/api/v1/crossings/", tokens[i % len(tokens)]),
        "POST /api/v1/locations/": lambda i: wsgi_environ("POST", "/api/v1/locations/", tokens[i % len(tokens)],
                                                      ping_body()),
    }

    def batch(handler, make, n) -> float:
        return thread_ms(handler, [make(i) for i in range(n)])

    print(f"{len(users)} users; {args.batches} alternating batches of {args.batch} per handler and endpoint; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    rows = []
    for name, make in endpoints.items():
        ma, mb = alternate(lambda make=make: batch(lean, make, args.batch),
                           lambda make=make: batch(before, make, args.batch), args.batches)
        rows.append((name, ma, mb))
        print(f"{name:26} skip for API {ma:.3f} ms   every middleware {mb:.3f} ms   ratio {ma / mb:.3f}", flush=True)
    print("\n| endpoint | app CPU ms, API skips browser middleware | every middleware | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for name, ma, mb in rows:
        print(f"| {name} | {ma:.3f} | {mb:.3f} | {ma / mb:.2f} |")
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
