"""App CPU per request of the stack around every API view: the request metrics and DRF's negotiation.

    python -m bench.scenarios.api_stack [--batches 15 --batch 300]

The request metrics: HttpMetricsMiddleware against django-prometheus's pair.
Three Django WSGI handlers in one process on the harness's bench database, serving the floor
views (no database, no cache): the project's middleware (core.observability.middleware's
HttpMetricsMiddleware first), the same list with django-prometheus's Before/After pair where it
stood before, and no middleware at all.  Batches alternate between the handlers, so a noisy
machine slows each alike; the figure is thread CPU time per request, median over the batches.
Content negotiation: the DRF floor view with core.api.rest.JsonFirstNegotiation and with
DRF's DefaultContentNegotiation (swapped on APIView between batches), without an Accept header
and with ``Accept: application/json``.  docs/benchmarks/performance.md, "The request metrics"
and "DRF's content negotiation".  URL resolution: the hot API paths resolved by the flat v1 list of
config/urls.py and by the list as it was (an include per app, accounts first).
"""

from __future__ import annotations

import argparse
import os
import statistics

from bench.harness.in_process import django_on_bench, thread_ms, wsgi_environ

_ID = "0190e6a0-0000-7000-8000-000000000000"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=15)
    parser.add_argument("--batch", type=int, default=300)
    args = parser.parse_args(argv)
    django_on_bench(BENCH_FLOOR_VIEWS="1")
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.utils import override_settings

    ours = list(settings.MIDDLEWARE)
    pair = ["django_prometheus.middleware.PrometheusBeforeMiddleware",
            *[m for m in ours if m != "core.observability.middleware.HttpMetricsMiddleware"]]
    pair.insert(pair.index("core.cache.response.ResponseCacheMiddleware") + 1,
                "django_prometheus.middleware.PrometheusAfterMiddleware")
    handlers = {}
    for name, middleware in (("HttpMetricsMiddleware", ours), ("django-prometheus pair", pair), ("no middleware", [])):
        with override_settings(MIDDLEWARE=middleware):
            handlers[name] = WSGIHandler()
            handlers[name].load_middleware()
    print(f"{args.batches} alternating batches of {args.batch}; load average {os.getloadavg()[0]:.1f}", flush=True)
    print("| path | " + " | ".join(handlers) + " | ours / pair |\n| --- |" + " ---: |" * (len(handlers) + 1))
    for path in ("/bench/floor/drf/", "/bench/floor/django/"):
        times: dict[str, list[float]] = {name: [] for name in handlers}
        for round_ in range(args.batches + 1):
            for name, handler in handlers.items():
                ms = thread_ms(handler, [wsgi_environ("GET", path, "") for _ in range(args.batch)])
                if round_:  # the first round warms up
                    times[name].append(ms)
        medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
        cells = " | ".join(f"{us:.1f} µs" for us in medians.values())
        ratio = medians["HttpMetricsMiddleware"] / medians["django-prometheus pair"]
        print(f"| GET {path} | {cells} | {ratio:.2f} |", flush=True)
    _negotiation(handlers["HttpMetricsMiddleware"], args)
    _resolution(args)
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")
    return 0


def _negotiation(handler, args) -> None:
    from rest_framework.negotiation import DefaultContentNegotiation
    from rest_framework.views import APIView

    from core.api.rest import JsonFirstNegotiation

    classes = {"JsonFirstNegotiation": JsonFirstNegotiation,
               "DRF's DefaultContentNegotiation": DefaultContentNegotiation}
    print("\n| GET /bench/floor/drf/ | " + " | ".join(classes) + " | ratio |\n| --- | ---: | ---: | ---: |")
    for accept in (None, "application/json"):
        def environs(accept: str | None = accept) -> list[dict]:
            made = [wsgi_environ("GET", "/bench/floor/drf/", "") for _ in range(args.batch)]
            for environ in made:
                if accept:
                    environ["HTTP_ACCEPT"] = accept
            return made

        times: dict[str, list[float]] = {name: [] for name in classes}
        try:
            for round_ in range(args.batches + 1):
                for name, cls in classes.items():
                    APIView.content_negotiation_class = cls
                    ms = thread_ms(handler, environs())
                    if round_:
                        times[name].append(ms)
        finally:
            APIView.content_negotiation_class = JsonFirstNegotiation
        medians = [statistics.median(values) * 1000 for values in times.values()]
        print(f"| Accept: {accept or '(none)'} | {medians[0]:.1f} µs | {medians[1]:.1f} µs | "
              f"{medians[0] / medians[1]:.2f} |", flush=True)


HOT_PATHS = ["/api/v1/locations/", "/api/v1/crossings/", "/api/v1/stories/feed/", f"/api/v1/users/{_ID}/",
             f"/api/v1/connections/{_ID}/messages/", "/api/v1/connections/", "/api/v1/me/"]


def _resolution(args) -> None:
    import time

    from django.urls import URLResolver, get_resolver, include, path
    from django.urls.resolvers import RegexPattern

    import config.urls

    apps = ["accounts", "locations", "crossings", "connections", "stories", "analytics"]
    nested = [path("", include(f"{app}.api.urls")) for app in apps]
    before = [path("api/v1/", include((nested, "api"), namespace="v1")) if str(p.pattern) == "api/v1/" else p
              for p in config.urls.urlpatterns]
    resolvers = {"flat, hot first": get_resolver(), "an include per app": URLResolver(RegexPattern(r"^/"), before)}
    print("\n| path | " + " | ".join(resolvers) + " | ratio |\n| --- | ---: | ---: | ---: |")
    for url in HOT_PATHS:
        times: dict[str, list[float]] = {name: [] for name in resolvers}
        for round_ in range(args.batches + 1):
            for name, resolver in resolvers.items():
                t0 = time.thread_time()
                for _ in range(args.batch):
                    resolver.resolve(url)
                if round_:
                    times[name].append((time.thread_time() - t0) / args.batch * 1e6)
        a, b = (statistics.median(values) for values in times.values())
        print(f"| {url} | {a:.1f} µs | {b:.1f} µs | {a / b:.2f} |", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
