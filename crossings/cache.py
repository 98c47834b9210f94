"""Cache keys of the crossings app: a versioned namespace per user.

Every cached read about a user's crossings lives under ``cx:<user>:<version>:...``; bumping
the user's version (on a crossing change, a block, a profile change) makes them all
unreachable at once.  A version is a nanosecond timestamp when created, so a version
evicted from Redis never comes back as one an old reader used.
"""

from __future__ import annotations

import itertools
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


_bumps = itertools.count()


def bump_users(user_ids: Iterable) -> None:
    """Invalidate every cached crossings read of these users.

    Each gets a new version that no reader can have seen (the clock in nanoseconds plus a
    counter), written with one pipelined ``SET .. EX`` per user: the detector bumps every
    active user's version each minute, and an ``INCR`` round trip per user would cost more
    than the detection.
    """
    users = sorted({str(uid) for uid in user_ids})
    if not users:
        return
    from config.cache import redis_client

    client = redis_client()
    version = time.time_ns() + next(_bumps)
    for start in range(0, len(users), 10_000):
        pipe = client.pipeline(transaction=False)
        for uid in users[start:start + 10_000]:
            pipe.set(cache.make_key(_version_key(uid)), version, ex=VERSION_TTL_S)
        pipe.execute()


def user_key(user_id, *parts) -> str:
    suffix = ":".join(str(part) for part in parts)
    return f"cx:{user_id}:{user_version(user_id)}:{suffix}"
