"""Celery entry points of accounts: thin wrappers over services."""

from __future__ import annotations

from celery import shared_task

from accounts import services


@shared_task(name="accounts.tasks.flush_last_active", ignore_result=True,
             autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=3)
def flush_last_active() -> int:
    """Write the minute's ``last_active_at`` marks from Redis to the database (beat: every 60 s)."""
    return services.flush_last_active()
