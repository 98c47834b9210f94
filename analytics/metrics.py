"""Scrape-time collectors: state shared by every process, measured once per scrape.

Each collector answers from the primary database, the replicas or the broker at the moment
Prometheus scrapes (every 15 s or so), so nothing is paid per request.  A collector whose
source is down reports what it can (``*_up`` 0) and never fails the scrape.
"""

from __future__ import annotations

import logging

from celery import current_app
from django.conf import settings
from prometheus_client.core import GaugeMetricFamily

from core.db.replicas import replica_lag
from core.observability import metrics as core_metrics
from crossings import selectors as crossing_selectors

logger = logging.getLogger(__name__)


class ReplicaLagCollector:
    """``crossings_replica_lag_seconds`` and ``crossings_replica_up`` per replica alias."""

    def describe(self):
        return []

    def collect(self):
        lag = GaugeMetricFamily("crossings_replica_lag_seconds",
                                "Seconds since the last transaction a replica replayed (0 when caught up)",
                                labels=["alias"])
        up = GaugeMetricFamily("crossings_replica_up", "1 if the replica answered the lag query", labels=["alias"])
        for alias in settings.REPLICA_ALIASES:
            status = replica_lag(alias)
            up.add_metric([alias], 1.0 if status.reachable else 0.0)
            if status.lag_seconds is not None:
                lag.add_metric([alias], status.lag_seconds)
        yield lag
        yield up


def _broker_queue_lengths(queues: list[str] | None = None) -> dict[str, int]:
    """Messages waiting per Celery queue (LLEN of each priority list in the broker's Redis)."""
    app = current_app
    if queues is None:
        queues = sorted({q.name for q in (app.conf.task_queues or [])} or {app.conf.task_default_queue or "celery"})
    lengths: dict[str, int] = {}
    with app.connection_for_read() as conn:
        channel = conn.default_channel
        client = channel.client
        for queue in sorted(queues):
            names = {channel._q_for_pri(queue, pri) for pri in channel.priority_steps}
            lengths[queue] = sum(int(client.llen(name)) for name in names)
    return lengths


class CeleryQueueCollector:
    """``celery_queue_length`` per queue: work waiting for a worker."""

    def describe(self):
        return []

    def collect(self):
        family = GaugeMetricFamily("celery_queue_length", "Messages waiting in the broker, per queue",
                                   labels=["queue"])
        up = GaugeMetricFamily("celery_broker_up", "1 if the broker answered")
        try:
            for queue, length in _broker_queue_lengths().items():
                family.add_metric([queue], length)
            up.add_metric([], 1.0)
        except Exception:
            logger.warning("could not read Celery queue lengths", exc_info=True)
            up.add_metric([], 0.0)
        yield family
        yield up


class DetectorLagCollector:
    """``crossings_detector_lag_seconds``: how far the detector is behind the pings."""

    def describe(self):
        return []

    def collect(self):
        family = GaugeMetricFamily("crossings_detector_lag_seconds",
                                   "Age of the oldest location ping not yet processed by the crossing detector "
                                   "(0 when it is caught up)")
        try:
            value = crossing_selectors.detector_lag_seconds()
        except Exception:
            logger.warning("could not measure the detector lag", exc_info=True)
            value = None
        if value is not None:
            family.add_metric([], value)
        yield family


_COLLECTORS = (ReplicaLagCollector(), CeleryQueueCollector(), DetectorLagCollector())


def register() -> None:
    """Register the scrape-time collectors (AnalyticsConfig.ready)."""
    for collector in _COLLECTORS:
        core_metrics.register_collector(collector)
