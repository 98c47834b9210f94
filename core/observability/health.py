"""Liveness and readiness probes for load balancers and orchestrators.

Readiness checks the primary, replicas, cache and broker, plus the checks apps register with
:func:`register_check` in their ``AppConfig.ready()`` (the crossing detector's lag).  The
answer says ok/failed per check only; why a check failed goes to the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from core.observability.access import operators_only

logger = logging.getLogger(__name__)

Check = Callable[[], dict | None]
# name -> check: a callable that raises when the dependency is not ready (it may return
# numbers worth showing, e.g. {"lag_s": 3.2}).  Filled by apps in AppConfig.ready().
_REGISTERED: dict[str, Check] = {}


class NotReady(Exception):
    """Raised by a check whose dependency is reachable but not good enough (too far behind)."""


def register_check(name: str, check: Check) -> None:
    """Add a readiness check (idempotent per name)."""
    _REGISTERED[name] = check


def registered_checks() -> dict[str, Check]:
    return dict(_REGISTERED)


@never_cache
def live(request):
    """The process answers: nothing else is checked (a dead database must not kill workers)."""
    return JsonResponse({"status": "ok"})


def _timed(name: str, check: Check) -> dict:
    started = time.perf_counter()
    try:
        detail = check()
        result: dict[str, object] = {"ok": True}
        if detail:
            result.update({key: value for key, value in detail.items() if isinstance(value, (int, float))})
    except Exception as exc:  # a readiness probe reports failures, it does not raise them
        logger.warning("readiness check %s failed: %s: %s", name, type(exc).__name__, exc)
        result = {"ok": False}
        if isinstance(exc, NotReady) and exc.args and isinstance(exc.args[-1], dict):
            result.update({key: value for key, value in exc.args[-1].items() if isinstance(value, (int, float))})
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
@operators_only
def ready(request):
    """Every dependency the app needs to serve: primary, replicas, cache, broker, and the
    registered checks."""
    checks = {"database": _timed("database", _database("default"))}
    for alias in settings.REPLICA_ALIASES:
        checks[alias] = _timed(alias, _database(alias))
    checks["cache"] = _timed("cache", _cache)
    checks["broker"] = _timed("broker", _broker)
    for name, check in registered_checks().items():
        checks[name] = _timed(name, check)
    # A replica that is down does not make the app unready: reads fall back to the primary.
    required = [name for name in checks if name not in settings.REPLICA_ALIASES]
    ok = all(checks[name]["ok"] for name in required)
    return JsonResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503)
