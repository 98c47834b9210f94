"""Celery entry points of the crossings app (thin wrappers over services)."""

from __future__ import annotations

from celery import shared_task

from crossings.detection.run import run_detection
from crossings.services import sweep_expired_crossings as sweep


@shared_task(name="crossings.detect", ignore_result=True, soft_time_limit=240, time_limit=300)
def detect_crossings() -> dict:
    """Process pending pings; beat runs it every minute.  Skips if another run holds the lock."""
    result = run_detection(wait=False)
    return {"skipped": result.skipped, "pings": result.pings, "changed": result.changed}


@shared_task(name="crossings.sweep_expired", ignore_result=True)
def sweep_expired_crossings() -> int:
    """Delete crossings past retention (also run by locations' sweep_expired as a sweeper)."""
    return sweep()
