"""Celery signal handlers: the request id follows a request into its tasks; task metrics and logs.

Loaded by ``config/celery.py``.  Design: docs/subsystems/platform.md.
"""

from __future__ import annotations

import contextvars
import logging
import time
from logging.config import dictConfig

import sentry_sdk
from celery import signals
from django.conf import settings

from core.observability import metrics
from core.observability.middleware import request_id_var

logger = logging.getLogger("crossings.tasks")
HEADER = "request_id"

# task id -> (context token, start time).  A worker process runs one task at a time per
# thread; the dict also serves thread pools, where several run at once.
_running: dict[str, tuple[contextvars.Token[str], float]] = {}


@signals.setup_logging.connect(dispatch_uid="crossings-logging")
def use_django_logging(**kwargs) -> None:
    """Workers and beat log like the web processes (JSON with request_id), not Celery's format.

    Connecting this signal stops Celery from replacing the root logger's handlers.
    """
    if settings.TESTING:  # an in-process test worker must not replace pytest's log capture
        return
    dictConfig(settings.LOGGING)


@signals.before_task_publish.connect(dispatch_uid="crossings-request-id-publish")
def add_request_id(headers=None, **kwargs) -> None:
    request_id = request_id_var.get()
    if headers is not None and request_id != "-" and not headers.get(HEADER):
        headers[HEADER] = request_id


def request_id_of(task) -> str:
    """The request id a task message carries, or one made from the task id."""
    request = getattr(task, "request", None)
    carried = getattr(request, HEADER, None) if request is not None else None
    if not carried and request is not None:
        carried = (getattr(request, "headers", None) or {}).get(HEADER)
    if carried:
        return str(carried)
    task_id = getattr(request, "id", None) if request is not None else None
    return f"task-{task_id}" if task_id else "-"


@signals.task_prerun.connect(dispatch_uid="crossings-task-prerun")
def on_task_prerun(task_id=None, task=None, **kwargs) -> None:
    request_id = request_id_of(task)
    token = request_id_var.set(request_id)
    _running[task_id] = (token, time.perf_counter())
    _tag_sentry(request_id)


def _tag_sentry(request_id: str) -> None:
    """With Sentry on (SENTRY_DSN), a task's errors carry the request id that queued it."""
    if not getattr(settings, "SENTRY_DSN", ""):
        return
    try:
        sentry_sdk.set_tag("request_id", request_id)
    except Exception:  # reporting must never break a task
        logger.debug("could not tag Sentry scope", exc_info=True)


@signals.task_postrun.connect(dispatch_uid="crossings-task-postrun")
def on_task_postrun(task_id=None, task=None, state=None, **kwargs) -> None:
    token, started = _running.pop(task_id, (None, None))
    name = getattr(task, "name", "unknown")
    if started is not None:
        seconds = time.perf_counter() - started
        metrics.TASK_DURATION.labels(name).observe(seconds)
        logger.info("task %s finished: %s in %.3f s", name, state, seconds,
                    extra={"task": name, "task_id": task_id, "state": state, "seconds": round(seconds, 3)})
    metrics.TASKS.labels(name, state or "UNKNOWN").inc()
    if token is not None:
        try:
            request_id_var.reset(token)
        except ValueError:  # reset from another context (eager tasks nested oddly): just clear
            request_id_var.set("-")


@signals.task_failure.connect(dispatch_uid="crossings-task-failure")
def on_task_failure(task_id=None, exception=None, sender=None, **kwargs) -> None:
    name = getattr(sender, "name", "unknown")
    metrics.TASK_FAILURES.labels(name, type(exception).__name__).inc()
    logger.error("task %s failed: %r", name, exception, extra={"task": name, "task_id": task_id})


@signals.task_retry.connect(dispatch_uid="crossings-task-retry")
def on_task_retry(request=None, reason=None, sender=None, **kwargs) -> None:
    name = getattr(sender, "name", "unknown")
    metrics.TASKS.labels(name, "RETRY").inc()
    logger.warning("task %s will be retried: %s", name, reason, extra={"task": name})
