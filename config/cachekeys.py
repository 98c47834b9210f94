"""Versioned cache keys: read many in two round trips, invalidate by bumping a counter.

Why versions rather than deleting keys: a read model (a user's connection list, an author's
live stories, a page of crossings) may be cached under several keys (pages, filters). One
``INCR`` of the owner's version makes every one of them unreachable at once, without knowing
their names; the orphans expire by their TTL.

    bump("connections", user_a, user_b)          # after a write that changes them
    batch = get_many_versioned("stories", author_ids)
    missing = batch.missing()                    # ids to load from the database, in one query
    batch.fill({author_id: value, ...}, timeout=300)
    batch.hits                                   # {id: value} for every id

Reads cost at most two round trips whatever the number of keys: one ``MGET`` of the
versions, then one pipeline with the ``MGET`` of the values (and ``SET NX`` of a fresh
version for owners that have none).  Keys use Django's cache key format (``cache.make_key``),
so the test suite's per-run prefix and ``cache.delete_pattern`` cover them.

Correctness rules the callers follow:

* ``bump`` runs after the write is committed (``bump_on_commit``), and once right away:
  a reader that filled the cache from a snapshot taken between the two is superseded.
* Loaders of a miss read the primary (``db_router.use_primary``): a lagging replica would
  otherwise put stale data under the new version for a whole TTL.

Redis down: every function degrades to "miss" (reads) or "nothing to do" (bumps) and logs
a warning; the circuit breaker of ``config.redis_breaker`` (shared by every Redis call of the
process) then fails calls at once for ``CACHE_BREAKER_SECONDS``, so that requests do not each
wait for a timeout while Redis is away.  The database stays the source of truth.
A bump lost during an outage would let a value cached before it live on if Redis comes back
with its data (a partition rather than a restart); so a process that saw Redis fail bumps a
global *epoch*, part of every value key, on its first successful call afterwards: everything
cached before the outage becomes unreachable at once.  The epoch is read in the same
``MGET`` as the versions, so it costs no round trip.
"""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

from django.core.cache import cache
from django.db import transaction
from prometheus_client import Counter

from config import redis_breaker
from config.cache import redis_client

logger = logging.getLogger(__name__)

VERSION_TTL_S = 7 * 24 * 3600  # far longer than any value's TTL (see _fresh_version)

_EPOCH = "__epoch__"

READS = Counter("crossings_cache_versioned_reads", "Values read through config.cachekeys, by namespace and "
                "result (hit, miss, down)", ["namespace", "result"])


def redis_available() -> bool:
    """False while the breaker (config.redis_breaker) is open after a Redis error."""
    return redis_breaker.available()


def _trip(exc: BaseException, what: str) -> None:
    redis_breaker.trip(exc, what)


def reset_breaker() -> None:
    """Close the breaker (tests, or an operator who knows Redis is back)."""
    redis_breaker.reset()


def _client():
    """The Redis client; after an outage seen by this process, the epoch is bumped first."""
    client = redis_client()
    if redis_breaker.take_missed_writes():
        try:
            client.incr(_epoch_key())
        except Exception:
            redis_breaker.note_missed_writes()
            raise
        logger.warning("cache reachable again: epoch bumped, values cached before the outage dropped")
    return client


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
    """The result of :func:`get_many_versioned`; ``fill`` stores the values loaded for misses."""

    namespace: str
    suffix: str
    versions: dict = field(default_factory=dict)
    hits: dict = field(default_factory=dict)
    ids: list = field(default_factory=list)

    def missing(self) -> list:
        return [owner for owner in self.ids if owner not in self.hits]

    def fill(self, values: dict, timeout: float) -> None:
        """Remember ``values`` (owner → value) for owners whose version is known; one round trip."""
        self.hits.update(values)
        if not values or not redis_available():
            return
        try:
            pipe = _client().pipeline(transaction=False)
            for owner, value in values.items():
                version = self.versions.get(owner)
                if version is not None:
                    pipe.set(versioned_key(self.namespace, owner, version, self.suffix), _encode(value),
                             ex=max(1, int(timeout)))
            pipe.execute()
        except Exception as exc:
            _trip(exc, f"fill {self.namespace}")


def get_many_versioned(namespace: str, owners: Iterable[Hashable], suffix: str = "") -> Batch:
    """Cached values of many owners in at most two round trips; misses are left to the caller."""
    ids = list(dict.fromkeys(str(o) for o in owners))
    batch = Batch(namespace=namespace, suffix=suffix, ids=ids)
    if not ids:
        return batch
    if not redis_available():
        READS.labels(namespace, "down").inc(len(ids))
        return batch
    try:
        client = _client()
        raw_epoch, *raw_versions = client.mget([_epoch_key()] + [_version_key(namespace, o) for o in ids])
        epoch = int(raw_epoch or 0)
        pipe = client.pipeline(transaction=False)
        known, fresh = [], []
        for owner, raw in zip(ids, raw_versions, strict=True):
            if raw is None:
                version = _fresh_version()
                pipe.set(_version_key(namespace, owner), version, nx=True, ex=VERSION_TTL_S)
                fresh.append((owner, f"{epoch}.{version}"))
            else:
                batch.versions[owner] = f"{epoch}.{int(raw)}"
                known.append(owner)
        if known:
            pipe.mget([versioned_key(namespace, o, batch.versions[o], suffix) for o in known])
        results = pipe.execute()
    except Exception as exc:
        _trip(exc, f"read {namespace}")
        batch.versions.clear()
        READS.labels(namespace, "down").inc(len(ids))
        return batch
    for (owner, version), created in zip(fresh, results, strict=False):
        # Lost a SET NX race: another reader set a version first; do not cache under ours.
        if created:
            batch.versions[owner] = version
    if known:
        for owner, raw in zip(known, results[-1], strict=True):
            if raw is not None:
                try:
                    batch.hits[owner] = _decode(raw)
                except Exception:  # a value from an incompatible release: a miss
                    logger.warning("undecodable cache value for %s:%s", namespace, owner)
    if batch.hits:
        READS.labels(namespace, "hit").inc(len(batch.hits))
    if len(ids) > len(batch.hits):
        READS.labels(namespace, "miss").inc(len(ids) - len(batch.hits))
    return batch


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
    """Invalidate everything cached for ``owners`` in ``namespace`` (one pipelined round trip)."""
    owners = tuple(dict.fromkeys(str(o) for o in owners if o is not None))
    if not owners:
        return
    try:
        pipe = _client().pipeline(transaction=False)
        for owner in owners:
            _pipe_bump(pipe, _version_key(namespace, owner))
        pipe.execute()
    except Exception as exc:
        _trip(exc, f"bump {namespace}")


def _pipe_bump(pipe, key: str) -> None:
    # SET NX first: a version key that was evicted must not restart at 1, where values
    # cached long ago under 1 could still live.
    pipe.set(key, _fresh_version(), nx=True, ex=VERSION_TTL_S)
    pipe.incr(key)
    pipe.expire(key, VERSION_TTL_S)


def bump_many(pairs: Iterable[tuple[str, Hashable]]) -> None:
    """``bump`` for several namespaces at once: ``[(namespace, owner), ...]``, one round trip."""
    keys = list(dict.fromkeys(_version_key(ns, str(o)) for ns, o in pairs if o is not None))
    if not keys:
        return
    try:
        pipe = _client().pipeline(transaction=False)
        for key in keys:
            _pipe_bump(pipe, key)
        pipe.execute()
    except Exception as exc:
        _trip(exc, "bump")


def bump_on_commit(pairs: Iterable[tuple[str, Hashable]]) -> None:
    """Bump now and again once the current transaction commits (see the module docstring)."""
    pairs = list(pairs)
    bump_many(pairs)
    transaction.on_commit(lambda: bump_many(pairs))
