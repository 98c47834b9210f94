"""Cache keys of the crossings app: a versioned namespace per user.

Every cached read about a user's crossings lives under ``cx:<user>:<version>:...``; bumping
the user's version (on a crossing change, a block, a profile change) makes them all
unreachable at once.  A version is a nanosecond timestamp when created, so a version
evicted from Redis never comes back as one an old reader used.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from django.core.cache import cache

FEED_TTL_S = 15 * 60  # the plan: crossing pages cached 15 minutes
VERSION_TTL_S = 8 * 24 * 3600


def _version_key(user_id) -> str:
    return f"cx:ver:{user_id}"


def user_version(user_id) -> int:
    key = _version_key(user_id)
    version = cache.get(key)
    if version is None:
        cache.add(key, time.time_ns(), VERSION_TTL_S)
        version = cache.get(key)
    return version


def bump_users(user_ids: Iterable) -> None:
    """Invalidate every cached crossings read of these users: one pipelined round trip.

    ``SET NX`` first, so that a version evicted from Redis restarts at "now" (never at a
    small number an old reader may have used), then ``INCR``.
    """
    users = sorted({str(uid) for uid in user_ids})
    if not users:
        return
    from config.cache import redis_client

    client = redis_client()
    start = time.time_ns()
    for chunk_start in range(0, len(users), 5000):
        pipe = client.pipeline(transaction=False)
        for user_id in users[chunk_start:chunk_start + 5000]:
            key = cache.make_key(_version_key(user_id))
            pipe.set(key, start, ex=VERSION_TTL_S, nx=True)
            pipe.incr(key)
        pipe.execute()


def user_key(user_id, *parts) -> str:
    suffix = ":".join(str(part) for part in parts)
    return f"cx:{user_id}:{user_version(user_id)}:{suffix}"
