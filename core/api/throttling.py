"""Rate limits kept in Redis, shared by every app server: a fixed-window counter per key.

One atomic INCR per request (taken in the response cache's lookup for cacheable reads); the
limit fails open while Redis is unreachable.  Design: docs/subsystems/platform.md.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from core.api.client_ip import rate_limit_key
from core.cache import keys as cachekeys
from core.cache.client import redis_client

logger = logging.getLogger(__name__)


def count_lua(key: str, ttl: str) -> str:
    """Lua that counts one hit on the counter ``key`` into ``n`` (a local declared by the caller)
    and gives a new window's counter its TTL; ``key`` and ``ttl`` are Lua expressions.  Shared
    with ``core.cache.response``, whose lookup script counts in the same round trip."""
    return f"n = redis.call('INCR', {key})\nif n == 1 then redis.call('EXPIRE', {key}, {ttl}) end\n"


def queue_hit(pipe, key: str, ttl: int) -> None:
    """The same in a pipeline (Redis Cluster, where a script cannot span slots)."""
    pipe.incr(key)
    pipe.expire(key, ttl)


# One command to pack and parse instead of a pipeline of two.
_HIT_SCRIPT = "local n\n" + count_lua("KEYS[1]", "ARGV[1]") + "return n\n"
_hit_script = None


class RedisRateThrottle(SimpleRateThrottle):
    scope: str = ""
    duration: int  # set by SimpleRateThrottle from the rate
    num_requests: int

    def __init__(self):
        super().__init__()
        self._wait = None

    def get_rate(self):
        """The rate for ``scope``, read at call time so ``override_settings`` applies in tests."""
        rates = api_settings.DEFAULT_THROTTLE_RATES or {}
        return rates.get(self.scope)

    def get_cache_key(self, request, view):  # pragma: no cover - subclasses say what they count
        raise NotImplementedError

    def counter(self, key: str) -> tuple[str, int]:
        """The Redis counter of ``key`` in the current window and its TTL (``core.cache.response``
        counts there too)."""
        window = int(time.time() // self.duration)
        return f"{settings.CACHE_KEY_PREFIX}:rl:{self.scope}:{key}:{window}", self.duration + 1

    def hit(self, key: str) -> int:
        global _hit_script
        client = redis_client()
        redis_key, ttl = self.counter(key)
        if cachekeys.is_cluster(client):
            pipe = client.pipeline(transaction=False)
            queue_hit(pipe, redis_key, ttl)
            return pipe.execute()[0]
        if _hit_script is None:
            _hit_script = client.register_script(_HIT_SCRIPT)
        return _hit_script(keys=[redis_key], args=[ttl], client=client)

    def allow_request(self, request, view):
        if not settings.RATE_LIMIT_ENABLED or self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        # Already counted for this request by the response cache's lookup (same round trip).
        counted = getattr(request, "rate_counted", None)
        if counted and (self.scope, key) in counted:
            return self._decide(counted[(self.scope, key)])
        return self.allow_key(key)

    def allow_key(self, key: str) -> bool:
        try:
            count = self.hit(key)
        except Exception:
            logger.warning("rate limiter unavailable; allowing the request", exc_info=True)
            return True
        return self._decide(count)

    def _decide(self, count: int) -> bool:
        if count <= self.num_requests:
            return True
        self._wait = self.duration - (time.time() % self.duration)
        return False

    def wait(self):
        return self._wait


class UserRateThrottle(RedisRateThrottle):
    """Every authenticated endpoint: 100 requests/minute/user by default."""

    scope = "user"

    def get_cache_key(self, request, view):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        return str(user.pk)


class IPRateThrottle(RedisRateThrottle):
    """Unauthenticated endpoints that could be brute-forced (login, codes), per client IP."""

    scope = "auth_ip"

    def get_cache_key(self, request, view):
        # Never DRF's get_ident: it believes X-Forwarded-For unless NUM_PROXIES is set.
        return rate_limit_key(request)
