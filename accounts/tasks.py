"""Celery entry points of accounts: thin wrappers over services."""

from __future__ import annotations

from celery import shared_task

from accounts import services


@shared_task(name="accounts.tasks.flush_last_active", ignore_result=True)
def flush_last_active() -> int:
    """Write the minute's ``last_active_at`` marks from Redis to the database (beat: every 60 s).

    No retries: a failed run leaves its marks in Redis and the next minute's run takes them.
    """
    return services.flush_last_active()


@shared_task(name="accounts.tasks.purge_ended_sessions", ignore_result=True)
def purge_ended_sessions() -> int:
    """Delete sessions that ended over a week ago and dead phone codes (beat: hourly)."""
    return services.purge_ended_sessions_and_codes()
