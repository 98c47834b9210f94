"""Benchmarks (bench/): development's services plus the measuring hooks, each off unless the
harness turns it on: the framework-floor views (BENCH_FLOOR_VIEWS) and a middleware that
reports each request's database queries and cache hits in headers (BENCH_QUERY_COUNT).
Production wiring never imports bench/; only this module does."""

from config.env import env_bool
from config.settings.dev import *  # noqa: F403

BENCH_FLOOR_VIEWS = env_bool("BENCH_FLOOR_VIEWS", False)
BENCH_QUERY_COUNT = env_bool("BENCH_QUERY_COUNT", False)
if BENCH_FLOOR_VIEWS:
    ROOT_URLCONF = "bench.hooks.urls"
if BENCH_QUERY_COUNT:
    MIDDLEWARE = [MIDDLEWARE[0], "bench.hooks.middleware.QueryCountMiddleware", *MIDDLEWARE[1:]]  # noqa: F405
