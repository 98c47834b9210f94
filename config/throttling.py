"""Rate limits kept in Redis, shared by every app server (plan section 5.5).

A fixed-window counter per key: one pipelined INCR + EXPIRE per request, atomic, so
several app instances count together.  If Redis is unreachable the limit fails open:
availability of the API matters more than the limit for the seconds Redis is away.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from config.cache import redis_client

logger = logging.getLogger(__name__)


class RedisRateThrottle(SimpleRateThrottle):
    scope: str = ""

    def __init__(self):
        super().__init__()
        self._wait = None

    def get_cache_key(self, request, view):  # pragma: no cover - subclasses say what they count
        raise NotImplementedError

    def hit(self, key: str) -> int:
        window = int(time.time() // self.duration)
        redis_key = f"{settings.CACHE_KEY_PREFIX}:rl:{self.scope}:{key}:{window}"
        pipe = redis_client().pipeline(transaction=False)
        pipe.incr(redis_key)
        pipe.expire(redis_key, self.duration + 1)
        count, _ = pipe.execute()
        return count

    def allow_request(self, request, view):
        if not settings.RATE_LIMIT_ENABLED or self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        return self.allow_key(key)

    def allow_key(self, key: str) -> bool:
        try:
            count = self.hit(key)
        except Exception:
            logger.warning("rate limiter unavailable; allowing the request", exc_info=True)
            return True
        if count <= self.num_requests:
            return True
        self._wait = self.duration - (time.time() % self.duration)
        return False

    def wait(self):
        return self._wait


class UserRateThrottle(RedisRateThrottle):
    """Every authenticated endpoint: 100 requests/minute/user by default (the plan's figure)."""

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
        return self.get_ident(request)
