"""Primary/replica routing with read-your-writes by WAL position.

Writes go to the primary; reads inside a request go to a healthy replica unless the request
changes data or has written, a transaction is open or the user's last write is not replayed there
yet; a read-only request a replica failed is served again from the primary.
Design: docs/subsystems/read-routing.md.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import random
import sys
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError, connections

from core.cache import breaker as redis_breaker
from core.db import replicas as replica_health

logger = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Errors of the server or the connection (down, restarting, recovery conflict, pool timeout),
# not of the query: a bug in SQL must not mark a replica down.
_REPLICA_FAILURES = (OperationalError, InterfaceError)


@dataclass
class _Scope:
    user_id: str | None = None
    wrote: bool = False
    pinned: bool | None = None  # None: not decided yet (decided lazily, on the first read)
    wait_for_wal: str | None = None
    replicas_used: set[str] = field(default_factory=set)
    replica_failed: bool = False
    primary_only: bool = False


_scope: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar("db_router_scope", default=None)
_force_primary: contextvars.ContextVar[bool] = contextvars.ContextVar("db_router_primary", default=False)


@contextlib.contextmanager
def request_scope(primary_only: bool = False):
    """Route reads of the enclosed request to replicas where read-your-writes allows."""
    token = _scope.set(_Scope(primary_only=primary_only))
    try:
        yield
    finally:
        scope = _scope.get()
        _scope.reset(token)
        if scope is not None and scope.wrote and scope.user_id:
            remember_write(scope.user_id)


@contextlib.contextmanager
def use_primary():
    """Force every read in the block to the primary."""
    token = _force_primary.set(True)
    try:
        yield
    finally:
        _force_primary.reset(token)


def set_user(user_id) -> None:
    """Called by authentication: the request acts for this user."""
    scope = _scope.get()
    if scope is not None:
        scope.user_id = str(user_id)


def _marker_key(user_id: str) -> str:
    return f"rw:{user_id}"


def _pin_seconds() -> float:
    # A marker must outlive the longest lag a replica may have and still be used: after it
    # expires, any healthy replica is at most REPLICA_MAX_LAG_S behind.
    return max(settings.REPLICA_PIN_SECONDS, settings.REPLICA_MAX_LAG_S + 2 * settings.REPLICA_HEALTH_TTL_S)


def remember_write(user_id) -> None:
    """Remember the primary's WAL position at this user's write (no-op without replicas)."""
    if not settings.REPLICA_ALIASES:
        return
    try:
        cache.set(_marker_key(str(user_id)), replica_health.primary_wal_position() or "pinned", _pin_seconds())
    except Exception:  # cache down: the reads below cannot see a marker, so they use the primary
        logger.warning("could not remember a write of user %s for read-your-writes", user_id, exc_info=True)


def _user_pinned(user_id: str | None) -> tuple[bool, str | None]:
    """(pinned, wal position to wait for) for this user."""
    if not user_id:
        return False, None
    try:
        marker = cache.get(_marker_key(user_id))
    except Exception:
        return True, None  # cannot tell: the primary is always right
    if marker is None and not redis_breaker.available():
        # The cache ignores Redis errors and answers "miss": a missing marker then says
        # nothing about a recent write, and only the primary is certainly current.
        return True, None
    if marker is None:
        return False, None
    if marker == "pinned":
        return True, None
    return False, marker


def _guard_replica(execute, sql, params, many, context):
    """Execute wrapper on replica connections: a failing replica is marked down at once."""
    try:
        return execute(sql, params, many, context)
    except _REPLICA_FAILURES:
        alias = context["connection"].alias
        replica_health.mark_down(alias)
        scope = _scope.get()
        if scope is not None:
            scope.replica_failed = True
        logger.warning("query failed on replica %s; marked down", alias, exc_info=True)
        raise


def _acting_user(model, instance) -> str | None:
    """The user an anonymous request writes for: sign-up saves a user, sign-in a session.

    Their next request (now with a token) must find those rows, so the write is remembered
    for that user as if they had been signed in.
    """
    if instance is None:
        return None
    if model._meta.label == settings.AUTH_USER_MODEL:
        return str(instance.pk) if instance.pk else None
    user_id = getattr(instance, "user_id", None)
    return str(user_id) if user_id else None


class PrimaryReplicaRouter:
    def db_for_read(self, model, **hints):
        replicas = settings.REPLICA_ALIASES
        scope = _scope.get()
        if not replicas or scope is None or scope.wrote or scope.primary_only or _force_primary.get():
            return "default"
        if connections["default"].in_atomic_block:
            return "default"

        if scope.pinned is None:
            scope.pinned, scope.wait_for_wal = _user_pinned(scope.user_id)
        if scope.pinned:
            return "default"
        candidates = replica_health.usable_replicas(replicas, scope.wait_for_wal)
        if not candidates:
            return "default"
        alias = random.choice(candidates)
        wrappers = connections[alias].execute_wrappers
        if _guard_replica not in wrappers:
            wrappers.append(_guard_replica)
        scope.replicas_used.add(alias)
        return alias

    def db_for_write(self, model, **hints):
        scope = _scope.get()
        if scope is not None:
            scope.wrote = True
            if scope.user_id is None:
                scope.user_id = _acting_user(model, hints.get("instance"))
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == "default"


def _note_replica_error(sender, request=None, **kwargs):
    """A request died on a database error after reading from a replica: let it be retried."""
    scope = _scope.get()
    exc = sys.exc_info()[1]
    if scope is not None and scope.replicas_used and isinstance(exc, _REPLICA_FAILURES):
        for alias in scope.replicas_used:  # the error may have come from connecting to one of them
            replica_health.mark_down(alias)
        scope.replica_failed = True


def connect_signals() -> None:
    """Connected in CoreConfig.ready()."""
    got_request_exception.connect(_note_replica_error, dispatch_uid="db_router_replica_error")


class ReplicaFallbackMiddleware:
    """Serve a read-only request again from the primary when a replica failed under it.

    Placed right after ``RequestContextMiddleware`` (settings add it when replicas are
    configured).  Only GET/HEAD/OPTIONS that did not write are retried, once: they have no
    effect to repeat.  Without it, every request in flight on a replica that goes down
    would fail until the next health probe.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        outer = _scope.get()
        if request.method not in SAFE_METHODS or outer is None:
            return self.get_response(request)
        token = _scope.set(_Scope(user_id=outer.user_id))
        try:
            response = self.get_response(request)
            attempt = _scope.get()
        finally:
            _scope.reset(token)
        outer.user_id = attempt.user_id or outer.user_id
        outer.wrote = attempt.wrote
        if not (attempt.replica_failed and not attempt.wrote and response.status_code >= 500):
            return response
        logger.warning("replica failed during %s %s; serving it from the primary", request.method, request.path)
        for alias in attempt.replicas_used:
            connections[alias].close()
        outer.primary_only = True
        response = self.get_response(request)
        outer.wrote = outer.wrote or attempt.wrote
        return response
