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
# The floor views stand for an API view: the same middleware as /api/ (core/api/middleware.py).
API_PATH_PREFIXES = (*API_PATH_PREFIXES, "/bench/floor/")  # noqa: F405
# BENCH_FLAT_MIDDLEWARE=1: every middleware for every request, as before API requests skipped
# the browser-only ones: the "before" of that change, measured side by side.
if env_bool("BENCH_FLAT_MIDDLEWARE", False):
    _SEGMENTS = {"core.api.middleware.WebOnlyRequestMiddleware": "request",
                 "core.api.middleware.WebOnlyAdminMiddleware": "admin"}
    MIDDLEWARE = [name for entry in MIDDLEWARE  # noqa: F405
                  for name in WEB_ONLY_MIDDLEWARE.get(_SEGMENTS.get(entry, ""), [entry])]  # noqa: F405
if BENCH_QUERY_COUNT:
    MIDDLEWARE = [MIDDLEWARE[0], "bench.hooks.middleware.QueryCountMiddleware", *MIDDLEWARE[1:]]
