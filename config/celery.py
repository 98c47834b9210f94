"""The Celery app and its beat schedule: every periodic job of the project is listed here."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("crossings")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

from core.observability import celery_signals  # noqa: E402,F401  (request id into tasks, task metrics and logs)

# One place for the whole schedule.  Each entry names a task
# in an app's tasks.py and expires before its next run; tasks are idempotent, time-limited,
# and retried with backoff or by their next run (tests/analytics/test_beat.py pins each).
BEAT_SCHEDULE: dict[str, dict] = {
    # Staff statistics (analytics): the materialized views, refreshed concurrently.
    "refresh-stats": {
        "task": "analytics.refresh_stats",
        "schedule": 300.0,
        "options": {"expires": 290},
    },
    # accounts: last_active_at hot counter, from Redis to the users table in one batched UPDATE.
    "flush-last-active": {
        "task": "accounts.tasks.flush_last_active",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # accounts: sessions ended over a week ago and dead phone codes, deleted in batches.
    "purge-ended-sessions": {
        "task": "accounts.tasks.purge_ended_sessions",
        "schedule": 3600.0,
        "options": {"expires": 3500},
    },
    # locations: day partitions of the pings table, created days ahead (a missed run is harmless).
    "ensure-partitions": {
        "task": "locations.ensure_partitions",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
    # locations (+ registered sweepers): expired pings leave by DROP of whole days, the edge by
    # bounded DELETEs; "gone within one sweep interval" (docs/crossings.md Privacy).
    "sweep-expired": {
        "task": "locations.sweep_expired",
        "schedule": 600.0,
        "options": {"expires": 540},
    },
    # crossings: detect crossings in the pings ingested since the last run (runs take turns
    # through a row lock; a run that finds the lock taken skips).  Crossings expire through
    # the "crossings" sweeper registered with sweep-expired above.
    "detect-crossings": {
        "task": "crossings.detect",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # realtime: the WebSocket event log keeps REALTIME_EVENT_RETENTION_HOURS (the resume window).
    "prune-realtime-events": {
        "task": "realtime.prune_events",
        "schedule": 600.0,
        "options": {"expires": 540},
    },
}
app.conf.beat_schedule = BEAT_SCHEDULE
