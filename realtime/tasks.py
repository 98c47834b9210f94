"""Celery entry points of the realtime layer: pruning the event log (scheduled in config/celery.py)."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from realtime import events


@shared_task(name="realtime.prune_events")
def prune_events() -> int:
    """Delete events older than the resume window (REALTIME_EVENT_RETENTION_HOURS)."""
    return events.prune(timezone.now() - timedelta(hours=settings.REALTIME_EVENT_RETENTION_HOURS))
