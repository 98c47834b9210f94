"""A circuit breaker for Redis calls, built into redis-py's ``Retry`` (``BreakerRetry``).

After a connection error or timeout, calls fail at once with ``BreakerOpen`` for
``CACHE_BREAKER_SECONDS``; possibly lost writes are remembered so that ``core.cache.keys``
bumps its epoch.  Imports nothing heavy: the settings use it.  Design: docs/subsystems/caching.md.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_open_until = 0.0
_missed_writes = False


class BreakerOpen(RedisConnectionError):
    """Redis failed moments ago; this call was not attempted."""


def _seconds() -> float:
    try:
        return float(getattr(settings, "CACHE_BREAKER_SECONDS", 2.0))
    except Exception:  # settings not configured (a script)
        return 2.0


def available() -> bool:
    return time.monotonic() >= _open_until


def trip(exc: BaseException, what: str = "redis call") -> None:
    """Open the breaker after a failure (and remember that a write may have been lost)."""
    global _open_until, _missed_writes
    with _lock:
        first = time.monotonic() >= _open_until
        _open_until = time.monotonic() + _seconds()
        _missed_writes = True
    if first:
        logger.warning("Redis unavailable during %s; cache bypassed for %.1f s: %s", what, _seconds(), exc)


def reset() -> None:
    """Close the breaker (tests; an operator who knows Redis is back)."""
    global _open_until
    with _lock:
        _open_until = 0.0


def take_missed_writes() -> bool:
    """True once after an outage: the caller compensates (``cachekeys`` bumps its epoch)."""
    global _missed_writes
    with _lock:
        missed, _missed_writes = _missed_writes, False
    return missed


def note_missed_writes() -> None:
    global _missed_writes
    with _lock:
        _missed_writes = True


class BreakerRetry(Retry):
    """redis-py's Retry, failing fast while the breaker is open and opening it on failure."""

    def call_with_retry(self, do, fail, is_retryable=None, with_failure_count=False):
        if not available():
            raise BreakerOpen("Redis circuit breaker open")
        try:
            return super().call_with_retry(do, fail, is_retryable, with_failure_count)
        except BreakerOpen:
            raise
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            trip(exc)
            raise
