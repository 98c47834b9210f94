"""One endpoint in one process under cProfile with thread CPU time: where its own CPU goes.

    python -m bench.scenarios.endpoint_profile send|read|ping|/api/v1/me/ [--requests 300]

Django's WSGI handler called directly (no HTTP server, no client) on the harness's seeded bench
database, signed in as users with an accepted connection; warmed up first. Prints the thread
CPU ms per request without the profiler, then the profile by cumulative thread CPU time (the
shares, not the absolute times, are what to read: cProfile slows every call).  Figures:
docs/benchmarks/performance.md, "Where the time goes".
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from datetime import UTC, datetime

import orjson

from bench.harness.in_process import chatting_users, django_on_bench, wsgi_environ


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("endpoint", help="send (POST messages), read (GET messages), ping, or a GET path")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--lines", type=int, default=45)
    parser.add_argument("--sort", default="cumulative", help="pstats order: cumulative, tottime, ...")
    parser.add_argument("--callers", default="", help="also print the callers of functions matching this")
    args = parser.parse_args(argv)
    django_on_bench()
    from django.core.handlers.wsgi import WSGIHandler

    conns, tokens = chatting_users("bench profile")
    handler = WSGIHandler()

    def environ(i: int) -> dict:
        conn, token = conns[i % len(conns)], tokens[i % len(conns)]
        if args.endpoint == "send":
            body = orjson.dumps({"body": "see you there?"})
            return wsgi_environ("POST", f"/api/v1/connections/{conn.pk}/messages/", token, body)
        if args.endpoint == "read":
            return wsgi_environ("GET", f"/api/v1/connections/{conn.pk}/messages/", token)
        if args.endpoint == "ping":
            ping = {"lat": 52.52, "lng": 13.405, "recorded_at": datetime.now(UTC).isoformat()}
            return wsgi_environ("POST", "/api/v1/locations/", token, orjson.dumps({"pings": [ping]}))
        return wsgi_environ("GET", args.endpoint, token)

    def start_response(status, headers, exc_info=None):
        if not status.startswith("20"):
            raise RuntimeError(f"{args.endpoint}: {status}")

    def run(n: int) -> None:
        for i in range(n):
            response = handler(environ(i), start_response)
            b"".join(response)
            response.close()

    run(100)
    t0 = time.thread_time()
    run(args.requests)
    print(f"{args.endpoint}: {(time.thread_time() - t0) / args.requests * 1000:.3f} ms thread CPU per request "
          f"(no profiler), load average {os.getloadavg()[0]:.1f}")
    profiler = cProfile.Profile(time.thread_time)
    profiler.enable()
    run(args.requests)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).sort_stats(args.sort)
    stats.print_stats(args.lines)
    if args.callers:
        stats.print_callers(args.callers)
    print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
