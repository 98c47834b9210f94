"""Metrics after traffic, Celery queue length, and the request id that follows a request into its tasks."""

from __future__ import annotations

import os
import threading
import uuid

import pytest
from celery.contrib.testing.worker import start_worker

from config.celery import app
from core.observability import metrics
from core.observability.middleware import request_id_var
from tests.conftest import client_for
from tests.factories import make_verified_user as make_user

EXPECTED_METRICS = [
    # latency per view (P50/P95/P99 via histogram_quantile), throughput and status classes
    "django_http_requests_latency_seconds_by_view_method_bucket",
    "django_http_responses_total_by_status_view_method_total",
    "django_http_requests_total_by_view_transport_method_total",
    # cache hits and misses: Django's cache API, the read models, whole responses
    "django_cache_get_hits_total",
    "django_cache_get_misses_total",
    "crossings_cache_versioned_reads_total",
    "crossings_response_cache_total",
    # database
    "django_db_execute_total",
    "crossings_db_pool_connections",
    "crossings_replica_lag_seconds",
    "crossings_replica_up",
    # Celery
    "celery_queue_length",
    "celery_broker_up",
    "celery_task_duration_seconds",
    "celery_task_failures",
    # domain
    "crossings_detector_lag_seconds",
    "crossings_pings_ingested",
]


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_metric_names_present_after_traffic(api):
    staff = make_user(is_staff=True)
    client = client_for(staff)
    assert client.get("/api/v1/admin/stats/").status_code == 200
    assert api.get("/api/v1/admin/stats/").status_code == 401
    from django.core.cache import cache

    cache.get("metrics-test-miss")
    for _ in range(2):  # a cacheable read: stored, then served whole
        assert client.get(f"/api/v1/users/{staff.pk}/").status_code == 200
    metrics.count_pings(accepted=3, implausible=1)
    body = api.get("/metrics").content.decode()
    missing = [name for name in EXPECTED_METRICS if name not in body]
    assert not missing, missing
    assert 'crossings_db_pool_connections{alias="default",state="size"}' in body
    assert 'crossings_replica_up{alias="replica1"} 1.0' in body
    assert 'crossings_replica_lag_seconds{alias="replica1"} 0.0' in body
    assert 'crossings_pings_ingested_total{result="accepted"}' in body
    assert 'crossings_response_cache_total{result="hit"}' in body
    assert 'crossings_response_cache_total{result="stored"}' in body
    assert 'crossings_cache_versioned_reads_total{namespace="acc-prof",result="hit"}' in body
    assert 'view="admin-stats"' in body or "view=\"v1:admin-stats\"" in body


def test_queue_length_counts_waiting_messages():
    from analytics.metrics import _broker_queue_lengths

    queue = f"test-metrics-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    assert _broker_queue_lengths([queue]) == {queue: 0}
    for _ in range(3):
        app.send_task("tests.never_run", queue=queue)
    try:
        assert _broker_queue_lengths([queue]) == {queue: 3}
    finally:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge(queue)
    assert _broker_queue_lengths([queue]) == {queue: 0}


_seen: dict[str, str] = {}


@app.task(name="tests.analytics.echo_request_id", bind=True)
def echo_request_id(self, key):
    _seen[key] = request_id_var.get()
    if key.startswith("fail"):
        raise RuntimeError("boom")


@pytest.fixture(scope="module")
def worker_queue():
    """A real worker (in a thread) consuming a queue of its own on the test broker."""
    queue = f"test-worker-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    with start_worker(app, pool="solo", perform_ping_check=False, queues=[queue], loglevel="WARNING",
                      shutdown_timeout=10):
        yield queue


def _wait_for(key, timeout=10.0):
    done = threading.Event()
    for _ in range(int(timeout / 0.05)):
        if key in _seen:
            return _seen[key]
        done.wait(0.05)
    raise AssertionError(f"task {key} did not run")


def test_request_id_follows_a_request_into_its_task(worker_queue):
    token = request_id_var.set("req-abc123")
    try:
        echo_request_id.apply_async(("from-request",), queue=worker_queue)
    finally:
        request_id_var.reset(token)
    echo_request_id.apply_async(("from-beat",), queue=worker_queue)
    assert _wait_for("from-request") == "req-abc123"
    assert _wait_for("from-beat").startswith("task-")
    assert request_id_var.get() == "-"


def test_task_metrics_count_durations_and_failures(worker_queue):
    name = echo_request_id.name
    failures_before = metrics.TASK_FAILURES.labels(name, "RuntimeError")._value.get()
    count_before = _histogram_count(name)
    echo_request_id.apply_async(("fail-1",), queue=worker_queue)
    echo_request_id.apply_async(("ok-1",), queue=worker_queue)
    _wait_for("fail-1")
    _wait_for("ok-1")
    for _ in range(100):  # postrun fires just after the body
        if _histogram_count(name) >= count_before + 2:
            break
        threading.Event().wait(0.05)
    assert _histogram_count(name) == count_before + 2
    assert metrics.TASK_FAILURES.labels(name, "RuntimeError")._value.get() == failures_before + 1


def _histogram_count(name):
    for family in metrics.TASK_DURATION.collect():
        for sample in family.samples:
            if sample.name.endswith("_count") and sample.labels.get("task") == name:
                return sample.value
    return 0


@pytest.mark.django_db(transaction=True)
def test_detector_lag_is_the_age_of_the_oldest_unprocessed_ping():
    from datetime import timedelta

    from django.utils import timezone

    from crossings.detection.run import run_detection
    from crossings.selectors import detector_lag_seconds
    from locations.models import Ping, PingStatus
    from tests.factories import make_city, make_ping

    make_city()
    user = make_user()
    assert detector_lag_seconds() == 0.0
    make_ping(user, recorded_at=timezone.now() - timedelta(minutes=1))
    Ping.objects.update(received_at=timezone.now() - timedelta(seconds=90))
    assert 89 <= detector_lag_seconds() < 120
    run_detection()
    assert detector_lag_seconds() == 0.0
    make_ping(user, recorded_at=timezone.now())
    assert 0 <= detector_lag_seconds() < 30
    run_detection()
    flagged = make_ping(user, recorded_at=timezone.now())
    Ping.objects.filter(id=flagged.id).update(status=PingStatus.IMPLAUSIBLE,
                                              received_at=timezone.now() - timedelta(seconds=90))
    assert detector_lag_seconds() == 0.0  # the detector never matches a flagged ping: nothing waits


def _referenced_metrics(text: str) -> set[str]:
    import re

    return set(re.findall(r"\b((?:django|crossings|celery)_[a-z0-9_]+)", text))


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_dashboard_and_alerts_use_metrics_the_app_exports(api):
    """Every metric the Grafana panels and alert rules query exists on /metrics."""
    import json
    from pathlib import Path

    import yaml
    from django.conf import settings

    from deploy.grafana.build_dashboard import build

    root = Path(settings.BASE_DIR) / "deploy"
    dashboard = json.loads((root / "grafana" / "crossings.json").read_text())
    assert dashboard == build(), "crossings.json is stale: run python deploy/grafana/build_dashboard.py"
    alerts = yaml.safe_load((root / "prometheus" / "alerts.yml").read_text())
    names = {rule["alert"] for group in alerts["groups"] for rule in group["rules"]}
    assert {"CrossingsHighErrorRate", "CrossingsHighP99Latency", "CrossingsReplicaLag", "CrossingsDetectorLag",
            "CrossingsCeleryQueueLong"} <= names
    scrape = yaml.safe_load((root / "prometheus" / "prometheus.yml").read_text())
    assert scrape["scrape_configs"][0]["metrics_path"] == "/metrics"

    api.get("/health/ready/")
    body = api.get("/metrics").content.decode()
    referenced = _referenced_metrics(json.dumps(dashboard)) | _referenced_metrics(json.dumps(alerts))
    # A labelled histogram shows its _bucket series only after a first observation.
    missing = sorted(name for name in referenced if name not in body and name.removesuffix("_bucket") not in body)
    assert not missing, missing


def test_multiprocess_mode_aggregates_every_process(tmp_path):
    """With PROMETHEUS_MULTIPROC_DIR, /metrics sums the counters of every worker process."""
    import subprocess
    import sys

    from django.conf import settings

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "config.settings"}
    bump = ("import django; django.setup(); from core.observability import metrics; "
            "metrics.count_pings(accepted=5, implausible=1); metrics.TASK_DURATION.labels('t').observe(0.2)")
    for _ in range(2):  # two "workers", each with its own counters, then gone
        subprocess.run([sys.executable, "-c", bump], env=env, cwd=settings.BASE_DIR, check=True)
    scrape = ("import django; django.setup(); from django.test import RequestFactory; "
              "from core.observability import metrics; "
              "print(metrics.metrics_view(RequestFactory().get('/metrics')).content.decode())")
    body = subprocess.run([sys.executable, "-c", scrape], env=env, cwd=settings.BASE_DIR, check=True,
                          capture_output=True, text=True).stdout
    assert 'crossings_pings_ingested_total{result="accepted"} 10.0' in body
    assert 'crossings_pings_ingested_total{result="implausible"} 2.0' in body
    assert 'celery_task_duration_seconds_count{task="t"} 2.0' in body
    assert "celery_queue_length" in body  # scrape-time collectors are added to the merged registry
