"""Prometheus metrics of the project beyond django-prometheus's, and the ``/metrics`` view.

Counters other apps bump, Celery task metrics and database pool gauges; in multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR``) the view aggregates every process's.
Design: docs/subsystems/platform.md.
"""

from __future__ import annotations

import logging
import os
import time

from django.core.signals import request_finished
from django.db import connections
from django.http import HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from core.observability.access import operators_only

logger = logging.getLogger(__name__)

# --- counters other apps call ------------------------------------------------------------

PINGS_INGESTED = Counter(
    "crossings_pings_ingested", "Location pings stored by the ingest endpoint", ["result"]
)
"""locations' ingest calls ``PINGS_INGESTED.labels(result="accepted").inc(n)`` (or "implausible")."""


def count_pings(accepted: int, implausible: int = 0) -> None:
    """Count one ingest batch (a helper so callers need not know the label names)."""
    if accepted:
        PINGS_INGESTED.labels(result="accepted").inc(accepted)
    if implausible:
        PINGS_INGESTED.labels(result="implausible").inc(implausible)


DETECTOR_SKIPPED = Counter(
    "crossings_detector_skipped",
    "Encounters the crossing detector left out, by reason (blocked pair, user gone, store retried)",
    ["reason"],
)
NEW_PAIRS_CAPPED = Counter(
    "crossings_new_pairs_capped",
    "New crossed pairs dropped because a user reached CROSSINGS_NEW_PER_DAY",
)


def count_skipped(reason: str, n: int = 1) -> None:
    if n:
        DETECTOR_SKIPPED.labels(reason=reason).inc(n)


# --- Celery (filled by core/observability/celery_signals.py in the worker) -----------------------------

TASK_DURATION = Histogram(
    "celery_task_duration_seconds",
    "Wall time of Celery tasks, by task name",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
TASKS = Counter("celery_tasks", "Celery tasks finished, by task and outcome", ["task", "state"])
TASK_FAILURES = Counter(
    "celery_task_failures", "Celery tasks that raised, by task and exception", ["task", "exception"]
)

# --- database pools, per process, summed over live processes -------------------------------

DB_POOL = Gauge(
    "crossings_db_pool_connections",
    "psycopg pool connections per database alias: size (open), in_use, idle, waiting (requests "
    "queued for a connection), max",
    ["alias", "state"],
    multiprocess_mode="livesum",
)
_POOL_UPDATE_INTERVAL_S = 1.0
_pool_updated_at = 0.0


def update_pool_gauges(force: bool = False) -> None:
    """Copy each open pool's stats into DB_POOL; at most once a second unless forced.

    Called after every request (cheap: a monotonic clock read) and at scrape time, so that
    every worker process's pool is reflected, not only the one that answers the scrape.
    """
    global _pool_updated_at
    now = time.monotonic()
    if not force and now - _pool_updated_at < _POOL_UPDATE_INTERVAL_S:
        return
    _pool_updated_at = now

    for alias in connections:
        # Read the pool without creating one: connection.pool would open a pool on demand.
        pool = getattr(connections[alias], "_connection_pools", {}).get(alias)
        if pool is None:
            continue
        stats = pool.get_stats()
        size = stats.get("pool_size", 0)
        available = stats.get("pool_available", 0)
        DB_POOL.labels(alias, "size").set(size)
        DB_POOL.labels(alias, "idle").set(available)
        DB_POOL.labels(alias, "in_use").set(max(size - available, 0))
        DB_POOL.labels(alias, "waiting").set(stats.get("requests_waiting", 0))
        DB_POOL.labels(alias, "max").set(stats.get("pool_max", 0))


def _on_request_finished(sender, **kwargs) -> None:
    try:
        update_pool_gauges()
    except Exception:  # metrics must never break a response
        logger.debug("could not update pool gauges", exc_info=True)


# --- scrape-time collectors and the view ----------------------------------------------------

_EXTRA_COLLECTORS: list = []


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir")


def register_collector(collector) -> None:
    """Add a collector computed at scrape time (once per scrape, in the scraping process)."""
    if collector in _EXTRA_COLLECTORS:
        return
    _EXTRA_COLLECTORS.append(collector)
    if not multiprocess_dir():
        REGISTRY.register(collector)


def registry() -> CollectorRegistry:
    """The registry a scrape reads: this process's, or every process's in multiprocess mode."""
    if not multiprocess_dir():
        return REGISTRY
    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged)
    for collector in _EXTRA_COLLECTORS:
        merged.register(collector)
    return merged


@operators_only
def metrics_view(request):
    """``GET /metrics``: the Prometheus text format, every process's in multiprocess mode (for
    allowed networks or the token: core.observability.access)."""
    try:
        update_pool_gauges(force=True)
    except Exception:
        logger.warning("could not read database pool stats", exc_info=True)
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)


def connect_signals() -> None:
    """Connected in CoreConfig.ready(): pool gauges are refreshed after requests."""
    request_finished.connect(_on_request_finished, dispatch_uid="crossings-pool-gauges")
