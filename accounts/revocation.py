"""Access tokens that stop working before they expire: per-session and per-user markers in Redis.

A revoked session, a logout, a deactivation or an erasure sets a marker that lives as long as
the longest access token could; ``AccessTokenAuthentication`` checks the markers in the
request's one Redis round trip (with the rate-limit count), and the database decides while
Redis is unreachable.  Guarantees and costs: docs/security.md (identity and sessions).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Session
from core.cache import breaker as redis_breaker
from core.cache.client import redis_client
from core.db import router as db_router

logger = logging.getLogger(__name__)

# Markers whose write failed (Redis away at that moment): written again before the next check.
_unsent_lock = threading.Lock()
_unsent: set[str] = set()


def session_marker(user_id, session_id) -> str:
    # One hash tag per user: both markers of a token sit in one Redis Cluster slot, so a
    # single EXISTS checks them.
    return f"{settings.CACHE_KEY_PREFIX}:rv:{{{user_id}}}:s:{session_id}"


def user_marker(user_id) -> str:
    return f"{settings.CACHE_KEY_PREFIX}:rv:{{{user_id}}}:u"


def token_markers(claims) -> tuple[str, str]:
    """The markers whose presence refuses a token with these claims."""
    return session_marker(claims.user_id, claims.session_id), user_marker(claims.user_id)


def marker_ttl() -> int:
    """Seconds a marker must live: the longest an access token issued before it can live."""
    return int(settings.ACCESS_TOKEN_TTL.total_seconds()) + 60


def _write(keys: Iterable[str]) -> None:
    keys = list(keys)
    if not keys:
        return
    try:
        if not redis_breaker.available():
            raise redis_breaker.BreakerOpen("Redis circuit breaker open")
        pipe = redis_client().pipeline(transaction=False)
        for key in keys:
            pipe.set(key, "1", ex=marker_ttl())
        pipe.execute()
    except Exception:
        # The database already says revoked; while Redis is away the check reads it there.
        # Once Redis answers again, the next check in this process writes these first.
        logger.error("could not write %d revocation marker(s); retried on the next check", len(keys),
                     exc_info=True)
        with _unsent_lock:
            _unsent.update(keys)


def _after_commit(keys: list[str]) -> None:
    transaction.on_commit(lambda: _write(keys))


def sessions_revoked(pairs: Iterable[tuple[object, object]]) -> None:
    """Refuse the access tokens of these ``(user id, session id)`` sessions once committed."""
    _after_commit([session_marker(user_id, session_id) for user_id, session_id in pairs])


def users_revoked(user_ids: Iterable) -> None:
    """Refuse every access token of these users once committed (deactivation, erasure)."""
    _after_commit([user_marker(user_id) for user_id in user_ids])


def user_restored(user_id) -> None:
    """A reactivated user: new tokens work again (the old sessions stay revoked)."""
    key = user_marker(user_id)
    with _unsent_lock:
        _unsent.discard(key)

    def clear():
        try:
            redis_client().delete(key)
        except Exception:
            logger.warning("could not clear the revocation marker of %s; it expires by itself", user_id,
                           exc_info=True)

    transaction.on_commit(clear)


def take_unsent() -> list[str]:
    with _unsent_lock:
        keys = list(_unsent)
        _unsent.clear()
    return keys


def requeue_unsent(keys: Iterable[str]) -> None:
    with _unsent_lock:
        _unsent.update(keys)


def queue_unsent(pipe, keys: list[str]) -> None:
    """Queue the writes of markers that failed earlier into a pipeline about to run."""
    for key in keys:
        pipe.set(key, "1", ex=marker_ttl())


def token_live_in_database(claims) -> bool:
    """The fallback while Redis is away: the session is live and its user active (primary)."""
    with db_router.use_primary():
        return Session.objects.filter(
            pk=claims.session_id, user_id=claims.user_id, revoked_at__isnull=True,
            expires_at__gt=timezone.now(), user__is_active=True,
        ).exists()
