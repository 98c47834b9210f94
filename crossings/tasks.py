"""Celery entry points of the crossings app (thin wrappers over services)."""

from __future__ import annotations

from celery import shared_task

from crossings.detection.run import run_detection, shard_count
from crossings.services import sweep_expired_crossings as sweep


@shared_task(name="crossings.detect", ignore_result=True, soft_time_limit=240, time_limit=300)
def detect_crossings(shard: int | None = None) -> dict:
    """Process pending pings; beat runs it every minute.  Skips if another run holds the lock.

    With CROSSING_SHARDS > 1 the beat's call (no ``shard``) enqueues one task per shard, so
    that as many workers detect at once (docs/subsystems/detection.md, "Shards").
    """
    count = shard_count()
    if shard is None and count > 1:
        for index in range(count):
            detect_crossings.apply_async(kwargs={"shard": index}, expires=55)
        return {"enqueued": count}
    result = run_detection(wait=False, shard=shard)
    return {"shard": shard or 0, "skipped": result.skipped, "pings": result.pings, "changed": result.changed}


@shared_task(name="crossings.sweep_expired", ignore_result=True)
def sweep_expired_crossings() -> int:
    """Delete crossings past retention (also run by locations' sweep_expired as a sweeper)."""
    return sweep()
