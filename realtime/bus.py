"""The realtime layer's Redis: one pub/sub channel per user and the per-user socket slots.

Synchronous publishing for the web and Celery processes (``publish``); the ASGI process
subscribes through ``realtime.hub``.  Key and channel names carry ``CACHE_KEY_PREFIX``.
Design: docs/realtime.md.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable

import orjson
import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)

PUBLISH_CHUNK = 1000

_client: redis.Redis | None = None
_client_pid = 0


def user_channel(user_id) -> str:
    return f"{settings.CACHE_KEY_PREFIX}:rt:u:{user_id}"


def user_from_channel(channel: str) -> str:
    return channel.rsplit(":", 1)[1]


def slot_keys(user_id) -> tuple[str, str]:
    """The user's sockets: by last heartbeat, and by connection time (the oldest is evicted)."""
    return (f"{settings.CACHE_KEY_PREFIX}:rt:hb:{user_id}", f"{settings.CACHE_KEY_PREFIX}:rt:born:{user_id}")


def client() -> redis.Redis:
    """A client of REALTIME_REDIS_URL for this process (a forked child makes its own)."""
    global _client, _client_pid
    if _client is None or _client_pid != os.getpid():
        _client = redis.Redis.from_url(settings.REALTIME_REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5,
                                       retry=Retry(NoBackoff(), 1))
        _client_pid = os.getpid()
    return _client


def publish(messages: Iterable[tuple[object, dict]]) -> None:
    """Publish ``(user_id, message)`` pairs on the users' channels, pipelined.

    A Redis failure is logged, never raised: the event is in the durable log and reaches the
    client on its next resume (or with the next event, which reveals the gap).
    """
    batch = list(messages)
    try:
        for start in range(0, len(batch), PUBLISH_CHUNK):
            pipe = client().pipeline(transaction=False)
            for user_id, message in batch[start:start + PUBLISH_CHUNK]:
                pipe.publish(user_channel(user_id), orjson.dumps(message))
            pipe.execute()
    except redis.RedisError:
        logger.warning("realtime: could not publish %d messages", len(batch), exc_info=True)


def control(user_ids: Iterable[object], op: str, **fields) -> None:
    """Tell every instance holding a socket of these users to act (close, block, unblock, evict)."""
    publish((user_id, {"k": "ctl", "op": op, **fields}) for user_id in user_ids)
