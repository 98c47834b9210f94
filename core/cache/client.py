"""Access to Redis beyond Django's cache API (pipelines, counters, rate limits)."""

from __future__ import annotations

from django.core.cache import caches


def redis_client(alias: str = "default"):
    """The raw redis-py client behind a cache alias (django-redis or our cluster backend)."""
    cache = caches[alias]
    client = getattr(cache, "client", None)
    if client is not None and hasattr(client, "get_client"):
        return client.get_client(write=True)
    if hasattr(cache, "redis_client"):
        return cache.redis_client()
    raise RuntimeError(f"cache {alias!r} is not backed by Redis")
