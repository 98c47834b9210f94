"""Per-request database and cache counts for the load test (BENCH_QUERY_COUNT=1 only).

Adds ``X-Bench-Queries``, ``X-Bench-Queries-Replica``, ``X-Bench-Cache-Gets`` and
``X-Bench-Cache-Hits`` to each response; the locustfile aggregates them (docs/benchmarks/README.md).
"""

from __future__ import annotations

import contextlib

from django.db import connections


def _cache_counts() -> tuple[float, float]:
    """(gets, hits) so far in this process, over every cache backend."""
    try:
        from django_prometheus.cache.metrics import django_cache_get_total, django_cache_hits_total
    except ImportError:  # pragma: no cover - django-prometheus is a runtime dependency
        return 0.0, 0.0

    def total(counter) -> float:
        # Each labelled child's value directly: collect() builds sample objects and cost ~8 % of
        # a request's CPU in the first profiles, billing the harness to the app.
        try:
            return sum(child._value.get() for child in list(counter._metrics.values()))
        except AttributeError:  # another prometheus_client layout
            return sum(s.value for m in counter.collect() for s in m.samples if s.name.endswith("_total"))

    return total(django_cache_get_total), total(django_cache_hits_total)


class QueryCountMiddleware:
    """Counts what one request sends to the databases and asks of the cache."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        counts: dict[str, int] = {}

        def counter(alias):
            def wrapper(execute, sql, params, many, context):
                counts[alias] = counts.get(alias, 0) + 1
                return execute(sql, params, many, context)

            return wrapper

        gets_before, hits_before = _cache_counts()
        with contextlib.ExitStack() as stack:
            for alias in connections:
                stack.enter_context(connections[alias].execute_wrapper(counter(alias)))
            response = self.get_response(request)
        gets_after, hits_after = _cache_counts()
        response["X-Bench-Queries"] = str(sum(counts.values()))
        response["X-Bench-Queries-Replica"] = str(sum(n for a, n in counts.items() if a != "default"))
        response["X-Bench-Cache-Gets"] = str(int(gets_after - gets_before))
        response["X-Bench-Cache-Hits"] = str(int(hits_after - hits_before))
        return response
