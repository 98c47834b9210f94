"""Celery entry points of analytics (scheduled in config/celery.py)."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from analytics import services


@shared_task(
    name="analytics.refresh_stats",
    autoretry_for=(OperationalError,),
    retry_backoff=10,
    retry_backoff_max=120,
    max_retries=3,
    soft_time_limit=240,
    time_limit=270,
    ignore_result=True,
)
def refresh_stats() -> dict:
    """Refresh the statistics views; a no-op if another refresh holds the lock."""
    result = services.refresh_stats()
    return {"refreshed": result.refreshed, "seconds": result.seconds}
