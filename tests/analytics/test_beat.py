"""The beat schedule (config/celery.py): every periodic job listed once, each safe to run late or twice."""

from __future__ import annotations

import pytest

from config.celery import BEAT_SCHEDULE, app

# entry -> (task name, period in seconds): what the operations issue asks beat to run.
EXPECTED = {
    "detect-crossings": ("crossings.detect", 60),
    "flush-last-active": ("accounts.tasks.flush_last_active", 60),
    "refresh-stats": ("analytics.refresh_stats", 300),
    "ensure-partitions": ("locations.ensure_partitions", 3600),
    # pings (partition drops), crossings, stories and their media: the registered sweepers
    "sweep-expired": ("locations.sweep_expired", 600),
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


@pytest.mark.parametrize("name", sorted(name for name, (_task, period) in EXPECTED.items() if period > 60))
def test_slow_period_tasks_retry_with_backoff(name, tasks):
    """A job run every minute is retried by the next run; slower ones retry with backoff."""
    task = tasks[BEAT_SCHEDULE[name]["task"]]
    assert task.autoretry_for and task.retry_backoff and task.max_retries


def test_tasks_ignore_results():
    """No result backend is configured: a stored result would only leak memory in Redis."""
    assert app.conf.task_ignore_result is True
