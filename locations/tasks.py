"""Celery entry points for partition upkeep and expiry: thin, idempotent, time-limited."""

from __future__ import annotations

from celery import shared_task

from locations import services, sweepers

_RETRY = {"autoretry_for": (Exception,), "retry_backoff": True, "retry_backoff_max": 300,
          "retry_jitter": True, "max_retries": 5}


@shared_task(name="locations.ensure_partitions", soft_time_limit=240, time_limit=300, **_RETRY)
def ensure_partitions_task(days_ahead: int = 3) -> list[str]:
    """Create day partitions ahead (hourly: a missed run still leaves days in hand)."""
    return services.ensure_partitions(days_ahead=days_ahead).created


@shared_task(name="locations.sweep_expired", soft_time_limit=240, time_limit=300, **_RETRY)
def sweep_expired_task() -> dict[str, int]:
    """Remove expired data of every registered sweeper (pings first)."""
    return sweepers.run_sweepers()
