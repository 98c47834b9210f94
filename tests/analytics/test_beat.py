"""The beat schedule (config/celery.py): every periodic job listed once, each safe to run late or twice."""

from __future__ import annotations

import pytest

from config.celery import BEAT_SCHEDULE, app

# entry -> (task name, period in seconds): what the operations issue asks beat to run.
EXPECTED = {
    "detect-crossings": ("crossings.detect", 60),
    "flush-last-active": ("accounts.tasks.flush_last_active", 60),
    "purge-ended-sessions": ("accounts.tasks.purge_ended_sessions", 3600),
    "refresh-stats": ("analytics.refresh_stats", 300),
    "ensure-partitions": ("locations.ensure_partitions", 3600),
    # pings (partition drops), crossings, stories and their media: the registered sweepers
    "sweep-expired": ("locations.sweep_expired", 600),
    # the WebSocket event log beyond its resume window
    "prune-realtime-events": ("realtime.prune_events", 600),
}


def _period(entry) -> float:
    schedule = entry["schedule"]
    return float(schedule) if isinstance(schedule, int | float) else schedule.run_every.total_seconds()


@pytest.fixture(scope="module")
def tasks():
    app.loader.import_default_modules()  # autodiscover every app's tasks.py
    return app.tasks


def test_schedule_lists_every_job():
    assert app.conf.beat_schedule is BEAT_SCHEDULE
    assert {name: (entry["task"], _period(entry)) for name, entry in BEAT_SCHEDULE.items()} == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_entry_names_a_registered_task(name, tasks):
    assert BEAT_SCHEDULE[name]["task"] in tasks


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_entry_expires_before_the_next_run(name):
    """A backlog (worker down) must not replay stale copies of a periodic job."""
    entry = BEAT_SCHEDULE[name]
    assert 0 < entry["options"]["expires"] < _period(entry)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_task_is_time_limited(name, tasks):
    task = tasks[BEAT_SCHEDULE[name]["task"]]
    hard = task.time_limit or app.conf.task_time_limit
    soft = task.soft_time_limit or app.conf.task_soft_time_limit
    assert hard and soft and soft < hard <= 600


# Jobs whose next run is their retry: they resume from durable state, and a missed run
# delays nothing a user sees.  Every other job must retry with backoff.
RETRIED_BY_NEXT_RUN = {
    "detect-crossings": "every minute, from the watermark; a run that fails leaves the batch for the next",
    "flush-last-active": "every minute; a failed flush leaves the marks in Redis for the next",
    "purge-ended-sessions": "hourly housekeeping; rows left by a failed run go an hour later",
    "prune-realtime-events": "every 10 minutes; events left by a failed run go at the next (replays stay correct)",
}


def test_jobs_without_retries_are_declared():
    assert set(RETRIED_BY_NEXT_RUN) <= set(EXPECTED)


@pytest.mark.parametrize("name", sorted(set(EXPECTED) - set(RETRIED_BY_NEXT_RUN)))
def test_other_jobs_retry_with_backoff(name, tasks):
    task = tasks[BEAT_SCHEDULE[name]["task"]]
    assert task.autoretry_for and task.retry_backoff and task.max_retries


def test_tasks_ignore_results():
    """No result backend is configured: a stored result would only leak memory in Redis."""
    assert app.conf.task_ignore_result is True
