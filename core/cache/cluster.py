"""A Django cache backend on a Redis Cluster (redis-py's ``RedisCluster``).

Batches split by hash slot, commands retried through a master's failover, writes followed by
``WAIT`` for a replica; ``redis_client()`` gives a client whose ``mget`` may cross slots.
Design: docs/subsystems/caching.md.
"""

from __future__ import annotations

import logging
import os
import pickle
import threading
import time
from collections import defaultdict
from urllib.parse import urlsplit

from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache
from django_prometheus.cache import metrics
from redis import exceptions as redis_errors
from redis.backoff import ExponentialBackoff
from redis.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.retry import Retry

logger = logging.getLogger(__name__)

_CLIENTS: dict[tuple, object] = {}
_CLIENTS_LOCK = threading.Lock()


def _dumps(value) -> bytes | int:
    if type(value) is int:  # not bool: True must come back as True
        return value
    return pickle.dumps(value, pickle.HIGHEST_PROTOCOL)


def _loads(data: bytes | None):
    if data is None:
        return None
    try:
        return int(data)
    except ValueError:
        return pickle.loads(data)  # noqa: S301 - only we write these keys


def _retryable_errors() -> tuple[type[BaseException], ...]:
    return (redis_errors.ConnectionError, redis_errors.TimeoutError, redis_errors.ClusterDownError,
            redis_errors.TryAgainError, redis_errors.MovedError,
            redis_errors.AskError, redis_errors.ClusterError, redis_errors.SlotNotCoveredError,
            redis_errors.ReadOnlyError)


class RedisClusterCache(BaseCache):
    def __init__(self, server, params):
        super().__init__(params)
        urls = server.split(",") if isinstance(server, str) else list(server)
        self._nodes = tuple(u.strip() for u in urls if u.strip())
        if not self._nodes:
            raise ValueError("RedisClusterCache needs at least one node in LOCATION")
        options = params.get("OPTIONS", {})
        self._socket_timeout = float(options.get("SOCKET_TIMEOUT", 0.5))
        self._connect_timeout = float(options.get("SOCKET_CONNECT_TIMEOUT", 0.5))
        self._max_connections = int(options.get("MAX_CONNECTIONS", 200))
        self._retry_seconds = float(options.get("RETRY_SECONDS", 5.0))
        self._wait_replicas = int(options.get("WAIT_REPLICAS", 0))
        self._wait_timeout_ms = int(options.get("WAIT_TIMEOUT_MS", 100))
        self._ignore_exceptions = bool(options.get("IGNORE_EXCEPTIONS", False))

    # ------------------------------------------------------------------ client, retries

    def redis_client(self):
        """The process's ``RedisCluster`` for these nodes (made after fork, shared by threads)."""
        key = (os.getpid(), self._nodes)
        client = _CLIENTS.get(key)
        if client is None:
            with _CLIENTS_LOCK:
                client = _CLIENTS.get(key)
                if client is None:
                    client = _CLIENTS[key] = self._make_client()
        return client

    def _make_client(self):
        startup = []
        for url in self._nodes:
            parts = urlsplit(url if "://" in url else f"redis://{url}")
            startup.append(ClusterNode(parts.hostname or "127.0.0.1", parts.port or 6379))
        return SlotSafeRedisCluster(
            startup_nodes=startup,
            socket_timeout=self._socket_timeout,
            socket_connect_timeout=self._connect_timeout,
            max_connections=self._max_connections,
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 2),
        )

    def _retrying(self, operation, default=None, *, read=False):
        """Run ``operation(client)``, refreshing the slot map and retrying through a failover.

        With ``IGNORE_EXCEPTIONS`` (the settings' choice for a single Redis too) a cluster
        still failing after ``RETRY_SECONDS`` is a miss for reads and a dropped write.
        """
        try:
            return self._retrying_or_raise(operation)
        except _retryable_errors():
            if not self._ignore_exceptions:
                raise
            logger.warning("Redis Cluster unavailable; cache %s ignored", "read" if read else "write",
                           exc_info=True)
            return default

    def _retrying_or_raise(self, operation):
        errors = _retryable_errors()
        deadline = time.monotonic() + self._retry_seconds
        delay = 0.05
        while True:
            client = self.redis_client()
            try:
                return operation(client)
            except errors:
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.4)
                try:
                    client.nodes_manager.initialize()
                except errors:
                    pass  # the next attempt fails or succeeds on its own

    def _write(self, commands: dict[str, list[tuple]]) -> dict[str, list]:
        """Run write commands grouped by key, one pipeline per master, each followed by WAIT.

        ``commands`` maps a (made) key to its commands as ``(name, *args)``; the result maps
        the key to their replies.
        """

        def run(client):
            by_node = defaultdict(list)
            for key in commands:
                by_node[client.get_node_from_key(key).name].append(key)
            replies = {}
            for name, keys in by_node.items():
                node_client = client.get_redis_connection(client.get_node(node_name=name))
                pipe = node_client.pipeline(transaction=False)
                for key in keys:
                    for command in commands[key]:
                        pipe.execute_command(*command)
                if self._wait_replicas:
                    pipe.execute_command("WAIT", self._wait_replicas, self._wait_timeout_ms)
                results = pipe.execute()
                position = 0
                for key in keys:
                    count = len(commands[key])
                    replies[key] = results[position:position + count]
                    position += count
            return replies

        return self._retrying(run, default=defaultdict(lambda: [None]))

    def get_backend_timeout(self, timeout=DEFAULT_TIMEOUT):
        """Seconds to live (BaseCache's default is an absolute time, for memcached), None: forever."""
        if timeout == DEFAULT_TIMEOUT:
            timeout = self.default_timeout
        return None if timeout is None else max(0, timeout)

    def _expiry_args(self, timeout) -> tuple:
        timeout = self.get_backend_timeout(timeout)
        if timeout is None:
            return ()
        return ("PX", max(1, int(timeout * 1000)))

    # --------------------------------------------------------------------- Django cache API

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        key = self.make_and_validate_key(key, version=version)
        if self.get_backend_timeout(timeout) == 0:
            return False
        reply = self._write({key: [("SET", key, _dumps(value), "NX", *self._expiry_args(timeout))]})
        return bool(reply[key][0])

    def get(self, key, default=None, version=None):
        key = self.make_and_validate_key(key, version=version)
        metrics.django_cache_get_total.labels(backend="redis_cluster").inc()
        failed = object()
        value = self._retrying(lambda client: client.get(key), failed, read=True)
        if value is failed:
            metrics.django_cache_get_fail_total.labels(backend="redis_cluster").inc()
            return default
        if value is None:
            metrics.django_cache_misses_total.labels(backend="redis_cluster").inc()
            return default
        metrics.django_cache_hits_total.labels(backend="redis_cluster").inc()
        return _loads(value)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        key = self.make_and_validate_key(key, version=version)
        if self.get_backend_timeout(timeout) == 0:
            self._write({key: [("DEL", key)]})
            return
        self._write({key: [("SET", key, _dumps(value), *self._expiry_args(timeout))]})

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        key = self.make_and_validate_key(key, version=version)
        timeout = self.get_backend_timeout(timeout)
        command = ("PERSIST", key) if timeout is None else ("PEXPIRE", key, max(1, int(timeout * 1000)))
        return bool(self._write({key: [command]})[key][0])

    def delete(self, key, version=None):
        key = self.make_and_validate_key(key, version=version)
        return bool(self._write({key: [("DEL", key)]})[key][0])

    def get_many(self, keys, version=None):
        keys = list(keys)
        if not keys:
            return {}
        made = {self.make_and_validate_key(key, version=version): key for key in keys}
        values = self._retrying(lambda client: client.mget_nonatomic(list(made)),
                                 [None] * len(made), read=True)
        return {made[k]: _loads(v) for k, v in zip(made, values, strict=True) if v is not None}

    def has_key(self, key, version=None):
        key = self.make_and_validate_key(key, version=version)
        return bool(self._retrying(lambda client: client.exists(key), 0, read=True))

    def incr(self, key, delta=1, version=None):
        key = self.make_and_validate_key(key, version=version)
        if not self._retrying(lambda client: client.exists(key), 0, read=True):
            raise ValueError(f"Key '{key}' not found.")
        value = self._write({key: [("INCRBY", key, delta)]})[key][0]
        if value is None:  # the cluster was unavailable and errors are ignored
            raise ValueError(f"Key '{key}' could not be incremented.")
        return int(value)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        if not data:
            return []
        if self.get_backend_timeout(timeout) == 0:
            self.delete_many(data, version=version)
            return []
        expiry = self._expiry_args(timeout)
        commands = {}
        for key, value in data.items():
            made = self.make_and_validate_key(key, version=version)
            commands[made] = [("SET", made, _dumps(value), *expiry)]
        self._write(commands)
        return []

    def delete_many(self, keys, version=None):
        commands = {}
        for key in keys:
            made = self.make_and_validate_key(key, version=version)
            commands[made] = [("DEL", made)]
        if commands:
            self._write(commands)

    def clear(self):
        """Delete this cache's keys (its KEY_PREFIX), on every master; other data stays."""
        self._delete_matching(f"{self.key_prefix}:*" if self.key_prefix else "*")
        return True

    # ------------------------------------------------------------ django-redis extras we use

    def delete_pattern(self, pattern, version=None):
        """Delete keys matching a glob (django-redis's API; the tests use it)."""
        return self._delete_matching(self.make_key(pattern, version=version))

    def ttl(self, key, version=None):
        key = self.make_and_validate_key(key, version=version)
        value = self._retrying(lambda client: client.ttl(key), -2, read=True)
        return None if value == -1 else max(0, value)

    def _delete_matching(self, glob: str) -> int:
        def scan(client):
            return list(client.scan_iter(match=glob, count=1000, target_nodes=RedisCluster.PRIMARIES))

        found = {k.decode() if isinstance(k, bytes) else k for k in self._retrying(scan, [], read=True)}
        if found:
            self._write({key: [("DEL", key)] for key in found})
        return len(found)

    def close(self, **kwargs):
        """Connections are pooled per process for the life of the worker."""


class _SlotSafePipeline:
    """A cluster pipeline whose ``mget`` may cross slots: queued as GETs, answered as one list.

    Code written for a single Redis (``core.cache.keys``, rate limits) pipelines ``MGET``
    of unrelated keys; on a cluster that is a CROSSSLOT error.  Every other command passes
    through unchanged, and ``execute`` returns one reply per command queued, as before.
    """

    def __init__(self, pipe: ClusterPipeline):
        self._pipe = pipe
        self._sizes: list[int | None] = []  # None: one command; n: an mget of n keys

    def mget(self, keys, *args):
        keys = [keys, *args] if isinstance(keys, (str, bytes)) else [*keys, *args]
        for key in keys:
            self._pipe.get(key)
        self._sizes.append(len(keys))
        return self

    def __getattr__(self, name):
        attribute = getattr(self._pipe, name)
        if not callable(attribute) or name in {"execute", "reset"}:
            return attribute

        def queue(*args, **kwargs):
            attribute(*args, **kwargs)
            self._sizes.append(None)
            return self

        return queue

    def execute(self, raise_on_error: bool = True) -> list:
        replies = self._pipe.execute(raise_on_error=raise_on_error)
        sizes, self._sizes = self._sizes, []
        grouped, position = [], 0
        for size in sizes:
            if size is None:
                grouped.append(replies[position])
                position += 1
            else:
                grouped.append(replies[position:position + size])
                position += size
        return grouped

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._sizes = []
        self._pipe.reset()


class SlotSafeRedisCluster(RedisCluster):
    """``RedisCluster`` whose ``mget`` and pipelined ``mget`` work across hash slots."""

    def mget(self, keys, *args):
        keys = [keys, *args] if isinstance(keys, (str, bytes)) else [*keys, *args]
        return self.mget_nonatomic(keys)

    def pipeline(self, transaction=None, shard_hint=None):
        return _SlotSafePipeline(super().pipeline(transaction=transaction, shard_hint=shard_hint))
