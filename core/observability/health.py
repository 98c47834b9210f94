"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import time

from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache


@never_cache
def live(request):
    """The process answers: nothing else is checked (a dead database must not kill workers)."""
    return JsonResponse({"status": "ok"})


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        detail = check()
        result: dict[str, object] = {"ok": True}
        if detail:
            result.update(detail)
    except Exception as exc:  # a readiness probe reports failures, it does not raise them
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    result["ms"] = round((time.perf_counter() - started) * 1000, 2)
    return result


def _database(alias: str):
    def check():
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()

    return check


def _cache():
    key = "health:ready"
    cache.set(key, "1", 10)
    if cache.get(key) != "1":
        raise RuntimeError("cache did not return what was written")


def _broker():
    with current_app.connection_for_read() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


@never_cache
def ready(request):
    """Every dependency the app needs to serve: primary, replicas, cache and broker."""
    checks = {"database": _timed(_database("default"))}
    for alias in settings.REPLICA_ALIASES:
        checks[alias] = _timed(_database(alias))
    checks["cache"] = _timed(_cache)
    checks["broker"] = _timed(_broker)
    # A replica that is down does not make the app unready: reads fall back to the primary.
    required = [name for name in checks if name not in settings.REPLICA_ALIASES]
    ok = all(checks[name]["ok"] for name in required)
    return JsonResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503)
