"""Primary/replica routing with read-your-writes.

Writes always go to ``default`` (the primary).  Reads go to a replica only inside an HTTP
request (``request_scope``) and only when nothing forces the primary:

* the request itself has written (its later reads must see that write);
* the user wrote recently (``remember_write`` keeps a marker in Redis for
  ``REPLICA_PIN_SECONDS``), so a user who posts and then reloads sees their post;
* the primary connection is inside a transaction (reads in a transaction belong with it).

Outside a request (Celery tasks, management commands) everything uses the primary: tasks
write, and a task that reads what another just wrote must not see a stale replica.

The marker's value is the primary's WAL position at the write where it is known
(``replica_health`` can then prefer replicas that have replayed past it); the pin time is
the fallback.  Replica health (down, lagging past ``REPLICA_MAX_LAG_S``) is consulted
through ``config.replica_health``, which caches it so no query pays for the check.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import random
from dataclasses import dataclass

from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)


@dataclass
class _Scope:
    user_id: str | None = None
    wrote: bool = False
    pinned: bool | None = None  # None: not decided yet (decided lazily, on the first read)
    wait_for_wal: str | None = None


_scope: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar("db_router_scope", default=None)
_force_primary: contextvars.ContextVar[bool] = contextvars.ContextVar("db_router_primary", default=False)


@contextlib.contextmanager
def request_scope():
    """Route reads of the enclosed request to replicas where read-your-writes allows."""
    token = _scope.set(_Scope())
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


def remember_write(user_id) -> None:
    from config.replica_health import primary_wal_position

    if not settings.REPLICA_ALIASES:
        return
    from django.core.cache import cache

    try:
        cache.set(_marker_key(str(user_id)), primary_wal_position() or "pinned", settings.REPLICA_PIN_SECONDS)
    except Exception:  # Redis down: without the marker, the fallback below reads the primary
        logger.warning("could not remember a write of user %s for read-your-writes", user_id, exc_info=True)


def _user_pinned(user_id: str | None) -> tuple[bool, str | None]:
    """(pinned, wal position to wait for) for this user."""
    if not user_id:
        return False, None
    from django.core.cache import cache

    try:
        marker = cache.get(_marker_key(user_id))
    except Exception:
        return True, None  # cannot tell: the primary is always right
    if marker is None:
        return False, None
    if marker == "pinned":
        return True, None
    return False, marker


class PrimaryReplicaRouter:
    def db_for_read(self, model, **hints):
        replicas = settings.REPLICA_ALIASES
        scope = _scope.get()
        if not replicas or scope is None or scope.wrote or _force_primary.get():
            return "default"
        if connections["default"].in_atomic_block:
            return "default"
        from config import replica_health

        if scope.pinned is None:
            scope.pinned, scope.wait_for_wal = _user_pinned(scope.user_id)
        if scope.pinned:
            return "default"
        candidates = replica_health.usable_replicas(replicas, scope.wait_for_wal)
        if not candidates:
            return "default"
        return random.choice(candidates)

    def db_for_write(self, model, **hints):
        scope = _scope.get()
        if scope is not None:
            scope.wrote = True
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == "default"
