"""Versioned cache keys: read many in one round trip (two on Redis Cluster), invalidate by bumping.

``get_many_versioned`` / ``read_entries`` read, ``Batch.fill`` stores the misses, ``bump`` /
``bump_on_commit`` invalidate; a global epoch retires everything cached before a Redis outage.
Design, and the rules callers follow: docs/subsystems/caching.md.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import pickle
import time
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from prometheus_client import Counter
from redis.cluster import RedisCluster

from core.cache import breaker as redis_breaker
from core.cache.client import redis_client

logger = logging.getLogger(__name__)


_EPOCH = "__epoch__"

READS = Counter("crossings_cache_versioned_reads", "Values read through core.cache.keys, by namespace and "
                "result (hit, miss, down)", ["namespace", "result"])


class Dependencies:
    """The versions a piece of work read through this module (``collect_dependencies``).

    ``versions`` maps each version key read (the epoch included) to the value it had; a
    result built only from those reads is current exactly while every key still holds that
    value (``core.cache.response`` checks them all in one round trip).  ``complete`` turns
    False when some read could not learn its version (Redis down, a lost race for a new
    version): such a result must not be cached.
    """

    __slots__ = ("complete", "versions")

    def __init__(self):
        self.versions: dict[str, str] = {}
        self.complete = True


_dependencies: contextvars.ContextVar[Dependencies | None] = contextvars.ContextVar("cachekeys_deps", default=None)


def collect_dependencies() -> tuple[Dependencies, contextvars.Token]:
    """Start recording every version read in this context; ``stop_collecting(token)`` ends it."""
    deps = Dependencies()
    return deps, _dependencies.set(deps)


def stop_collecting(token: contextvars.Token) -> None:
    _dependencies.reset(token)


def redis_available() -> bool:
    """False while the breaker (core.cache.breaker) is open after a Redis error."""
    return redis_breaker.available()


def _trip(exc: BaseException, what: str) -> None:
    redis_breaker.trip(exc, what)


def reset_breaker() -> None:
    """Close the breaker (tests, or an operator who knows Redis is back)."""
    redis_breaker.reset()


def client():
    """The Redis client; after an outage seen by this process, the epoch is bumped first
    (every read that relies on the epoch goes through here)."""
    redis = redis_client()
    if redis_breaker.take_missed_writes():
        try:
            redis.incr(_epoch_key())
        except Exception:
            redis_breaker.note_missed_writes()
            raise
        logger.warning("cache reachable again: epoch bumped, values cached before the outage dropped")
    return redis


def _epoch_key() -> str:
    return cache.make_key(f"v:{_EPOCH}")


def _version_key(namespace: str, owner: Hashable) -> str:
    return cache.make_key(f"v:{namespace}:{owner}")


def versioned_key(namespace: str, owner: Hashable, version, suffix: str = "") -> str:
    """The full Redis key of ``owner``'s value at ``version`` (``suffix`` tells pages apart).

    ``version`` is ``"<epoch>.<owner's version>"`` as returned in ``Batch.versions``.
    """
    return cache.make_key(f"c:{namespace}:{owner}:{version}:{suffix}")


def _fresh_version() -> int:
    # A version key evicted by memory pressure comes back larger than any value it had
    # (nanoseconds grow faster than bumps, each a round trip), so an old value is never read again.
    return time.time_ns()


def _encode(value) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _decode(raw: bytes):
    return pickle.loads(raw)  # noqa: S301 - our own values, in our own Redis


@dataclass
class Batch:
    """The result of a read; ``fill`` stores the values loaded for misses.

    ``ids`` are owners (``get_many_versioned``: one namespace) or ``(namespace, owner, suffix)``
    entries (``read_entries``: several namespaces in the same round trip).
    """

    entries: dict = field(default_factory=dict)  # id -> (namespace, owner, suffix)
    versions: dict = field(default_factory=dict)  # id -> "<epoch>.<version>"
    hits: dict = field(default_factory=dict)  # id -> value
    ids: list = field(default_factory=list)

    def missing(self) -> list:
        return [key for key in self.ids if key not in self.hits]

    def fill(self, values: dict, timeout: float) -> None:
        """Remember ``values`` (id → value) for ids whose version is known; one round trip."""
        self.hits.update(values)
        known = _prefetched.get()
        if known is not None:  # later reads in the prefetch block see the value, as Redis would
            for key, value in values.items():
                entry = _entry_of(self, key)
                if entry in known.pairs and self.versions.get(key) is not None:
                    known.pairs[entry] = (known.pairs[entry][0], _encode(value))
        if not values or not redis_available():
            return
        try:
            pipe = client().pipeline(transaction=False)
            for key, value in values.items():
                version = self.versions.get(key)
                if version is not None:
                    namespace, owner, suffix = self.entries[key]
                    pipe.set(versioned_key(namespace, owner, version, suffix), _encode(value),
                             ex=max(1, int(timeout)))
            pipe.execute()
        except Exception as exc:
            _trip(exc, "fill")


# One round trip for any number of keys: read the epoch and each owner's version, create the
# versions that are missing, and read the values under them.  KEYS: the epoch key, then the
# owners' version keys; ARGV: a fresh version, its TTL, then for each owner the value key's
# text before and after "<epoch>.<version>".
_READ_SCRIPT = """
local epoch = redis.call('GET', KEYS[1]) or '0'
local out = {epoch}
for i = 2, #KEYS do
  local version = redis.call('GET', KEYS[i])
  local value = false
  if version then
    value = redis.call('GET', ARGV[2 * i - 1] .. epoch .. '.' .. version .. ARGV[2 * i])
  else
    redis.call('SET', KEYS[i], ARGV[1], 'EX', ARGV[2])
    version = ARGV[1]
  end
  out[#out + 1] = version
  out[#out + 1] = value
end
return out
"""
_script = None
_MARK = "\x00"


def is_cluster(client) -> bool:
    return isinstance(client, RedisCluster)


def _read_scripted(client, entries: list[tuple]) -> tuple[str, list]:
    """``(epoch, [(version, raw value or None), ...])`` in one EVALSHA."""
    global _script
    if _script is None:
        _script = client.register_script(_READ_SCRIPT)
    args: list[object] = [_fresh_version(), settings.CACHE_VERSION_TTL_S]
    for namespace, owner, suffix in entries:
        args.extend(versioned_key(namespace, owner, _MARK, suffix).split(_MARK, 1))
    keys = [_epoch_key()] + [_version_key(ns, owner) for ns, owner, _s in entries]
    raw = _script(keys=keys, args=args, client=client)
    epoch = raw[0].decode() if isinstance(raw[0], bytes) else str(raw[0])
    pairs = [(raw[i].decode() if isinstance(raw[i], bytes) else str(raw[i]), raw[i + 1])
             for i in range(1, len(raw), 2)]
    return epoch, pairs


def _read_pipelined(client, entries: list[tuple]) -> tuple[str, list]:
    """The same in two round trips, for Redis Cluster (a script cannot span slots)."""
    raw_epoch, *raw_versions = client.mget([_epoch_key()] + [_version_key(ns, o) for ns, o, _s in entries])
    epoch = (raw_epoch or b"0").decode() if isinstance(raw_epoch, bytes) else str(raw_epoch or 0)
    pipe = client.pipeline(transaction=False)
    versions = []
    for (namespace, owner, suffix), raw in zip(entries, raw_versions, strict=True):
        if raw is None:
            version = str(_fresh_version())
            pipe.set(_version_key(namespace, owner), version, nx=True, ex=settings.CACHE_VERSION_TTL_S)
            versions.append((version, True))
        else:
            version = raw.decode() if isinstance(raw, bytes) else str(raw)
            pipe.get(versioned_key(namespace, owner, f"{epoch}.{version}", suffix))
            versions.append((version, False))
    results = pipe.execute()
    pairs = []
    for (version, created), result in zip(versions, results, strict=True):
        if created:  # lost a SET NX race: another reader set a version; cache nothing under ours
            pairs.append((version if result else None, None))
        else:
            pairs.append((version, result))
    return epoch, pairs


class _Prefetched:
    """What ``prefetch`` read: the epoch and each entry's (version, raw value or None)."""

    __slots__ = ("epoch", "pairs")

    def __init__(self, epoch: str, pairs: dict):
        self.epoch = epoch
        self.pairs = pairs


_prefetched: contextvars.ContextVar[_Prefetched | None] = contextvars.ContextVar("cachekeys_prefetched",
                                                                                 default=None)


def _entry_of(batch: Batch, key) -> tuple:
    namespace, owner, suffix = batch.entries[key]
    return (namespace, str(owner), suffix)


@contextlib.contextmanager
def prefetch(entries: Iterable[tuple[str, Hashable, str]]) -> Iterator[None]:
    """Read ``entries`` (``(namespace, owner, suffix)``) in one round trip now; in the block, reads
    of only those entries are answered from it (and from what the block fills) without Redis.

    For a read-only stretch of one request whose reads are known up front (a profile and the
    visibility checks before it): several round trips become one.  Values are decoded again on
    each read, as from Redis; versions are recorded for ``collect_dependencies`` at the read,
    as always.  A bump in the block ends the prefetch (later reads go to Redis).  Redis down or
    a failed read: nothing is prefetched and every read goes its usual way.
    """
    ids = list(dict.fromkeys((ns, str(owner), suffix) for ns, owner, suffix in entries))
    known = None
    if ids and redis_available():
        try:
            redis = client()
            read = _read_pipelined if is_cluster(redis) else _read_scripted
            epoch, pairs = read(redis, ids)
            known = _Prefetched(epoch, dict(zip(ids, pairs, strict=True)))
        except Exception as exc:
            _trip(exc, "prefetch")
    token = _prefetched.set(known)
    try:
        yield
    finally:
        _prefetched.reset(token)


def _read(batch: Batch) -> Batch:
    if not batch.ids:
        return batch
    namespaces = {batch.entries[key][0] for key in batch.ids}
    label = next(iter(namespaces)) if len(namespaces) == 1 else "mixed"
    deps = _dependencies.get()
    known = _prefetched.get()
    if known is not None and all(_entry_of(batch, key) in known.pairs for key in batch.ids):
        return _apply(batch, label, deps, known.epoch, [known.pairs[_entry_of(batch, key)] for key in batch.ids])
    if not redis_available():
        READS.labels(label, "down").inc(len(batch.ids))
        if deps is not None:
            deps.complete = False
        return batch
    entries = [batch.entries[key] for key in batch.ids]
    try:
        redis = client()
        read = _read_pipelined if is_cluster(redis) else _read_scripted
        epoch, pairs = read(redis, entries)
    except Exception as exc:
        _trip(exc, f"read {label}")
        READS.labels(label, "down").inc(len(batch.ids))
        if deps is not None:
            deps.complete = False
        return batch
    return _apply(batch, label, deps, epoch, pairs)


def _apply(batch: Batch, label: str, deps: Dependencies | None, epoch: str, pairs: list) -> Batch:
    """Fill ``batch`` from a read's epoch and (version, raw value) pairs; record the versions."""
    if deps is not None:
        deps.versions[_epoch_key()] = epoch
    for key, (version, raw) in zip(batch.ids, pairs, strict=True):
        if deps is not None:
            if version is None:
                deps.complete = False
            else:
                namespace, owner, _suffix = batch.entries[key]
                deps.versions[_version_key(namespace, owner)] = version
        if version is not None:
            batch.versions[key] = f"{epoch}.{version}"
        if raw is not None:
            try:
                batch.hits[key] = _decode(raw)
            except Exception:  # a value from an incompatible release: a miss
                logger.warning("undecodable cache value for %s", batch.entries[key])
    if batch.hits:
        READS.labels(label, "hit").inc(len(batch.hits))
    if len(batch.ids) > len(batch.hits):
        READS.labels(label, "miss").inc(len(batch.ids) - len(batch.hits))
    return batch


def get_many_versioned(namespace: str, owners: Iterable[Hashable], suffix: str = "") -> Batch:
    """Cached values of many owners of one namespace, keyed by owner; misses left to the caller.

    One round trip (a Lua script); two on Redis Cluster.
    """
    ids = list(dict.fromkeys(str(o) for o in owners))
    return _read(Batch(entries={owner: (namespace, owner, suffix) for owner in ids}, ids=ids))


def read_entries(entries: Iterable[tuple[str, Hashable, str]]) -> Batch:
    """Like ``get_many_versioned`` across namespaces: ids are ``(namespace, owner, suffix)``."""
    ids = list(dict.fromkeys((ns, str(owner), suffix) for ns, owner, suffix in entries))
    return _read(Batch(entries={key: key for key in ids}, ids=ids))


def get_versioned(namespace: str, owner: Hashable, loader, timeout: float, suffix: str = ""):
    """One owner's value: from the cache, else ``loader()`` (stored for next time)."""
    batch = get_many_versioned(namespace, [owner], suffix)
    key = str(owner)
    if key in batch.hits:
        return batch.hits[key]
    value = loader()
    batch.fill({key: value}, timeout)
    return value


def bump(namespace: str, *owners: Hashable) -> None:
    """Invalidate everything cached for ``owners`` in ``namespace`` (one round trip)."""
    bump_many((namespace, owner) for owner in owners)


def _pipe_bump(pipe, key: str) -> None:
    # SET NX first: a version key that was evicted must not restart at 1, where values
    # cached long ago under 1 could still live.
    pipe.set(key, _fresh_version(), nx=True, ex=settings.CACHE_VERSION_TTL_S)
    pipe.incr(key)
    pipe.expire(key, settings.CACHE_VERSION_TTL_S)


# The bump of _pipe_bump for every key in one EVALSHA: one command to pack and parse instead
# of three per key (the detector bumps every active user each minute).  ARGV: a fresh version, its TTL.
_BUMP_SCRIPT = """
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], ARGV[1], 'NX', 'EX', ARGV[2])
  redis.call('INCR', KEYS[i])
  redis.call('EXPIRE', KEYS[i], ARGV[2])
end
return #KEYS
"""
_bump_script = None


def bump_many(pairs: Iterable[tuple[str, Hashable]]) -> None:
    """``bump`` for several namespaces at once: ``[(namespace, owner), ...]``, one round trip."""
    global _bump_script
    keys = list(dict.fromkeys(_version_key(ns, str(o)) for ns, o in pairs if o is not None))
    if not keys:
        return
    known = _prefetched.get()
    if known is not None:  # what was prefetched may be stale now: later reads go to Redis
        known.pairs.clear()
    try:
        redis = client()
        if is_cluster(redis):  # a script cannot span slots: a pipeline, split by node
            pipe = redis.pipeline(transaction=False)
            for key in keys:
                _pipe_bump(pipe, key)
            pipe.execute()
            return
        if _bump_script is None:
            _bump_script = redis.register_script(_BUMP_SCRIPT)
        _bump_script(keys=keys, args=[_fresh_version(), settings.CACHE_VERSION_TTL_S], client=redis)
    except Exception as exc:
        _trip(exc, "bump")


def bump_on_commit(pairs: Iterable[tuple[str, Hashable]]) -> None:
    """Bump now and again once the current transaction commits (docs/subsystems/caching.md)."""
    pairs = list(pairs)
    bump_many(pairs)
    transaction.on_commit(lambda: bump_many(pairs))
