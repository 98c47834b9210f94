"""Cached reads of the crossings app, on the project's versioned keys (core.cache.keys).

Everything lives in namespace ``cx`` under the user's version; ``bump_users`` invalidates it.
Loaders read the primary.  Design: docs/subsystems/read-caches.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.conf import settings

from core.cache import keys as cachekeys
from core.db import router as db_router

NAMESPACE = "cx"
_BUMP_CHUNK = 10_000  # users per pipeline: the detector bumps every active user each minute


def cached(user_id, suffix: str, loader: Callable[[], object]):
    """``loader()``'s value for ``user_id``, cached under the user's version."""

    def load_from_primary():
        with db_router.use_primary():
            return loader()

    return cachekeys.get_versioned(NAMESPACE, user_id, load_from_primary, settings.CROSSINGS_CACHE_S, suffix=suffix)


def bump_users(user_ids: Iterable) -> None:
    """Invalidate every cached crossings read of these users (Redis down: nothing to do)."""
    users = sorted({str(uid) for uid in user_ids if uid is not None})
    for start in range(0, len(users), _BUMP_CHUNK):
        cachekeys.bump_many((NAMESPACE, uid) for uid in users[start:start + _BUMP_CHUNK])
