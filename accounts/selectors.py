"""Reads about users that other apps may call: blocks and public profiles, cached in Redis.

Two caches, each with explicit invalidation by ``accounts.services`` (after commit):

* **Hidden users** (who ``user_id`` blocked or was blocked by): one key per user whose name
  carries a per-user *generation* (``acc:hid:<user>:<gen>``).  A block or unblock bumps the
  generation of both users, so a reader that loaded the set from the database just before
  the block cannot put a stale set back under the current key.  Blocking hides people "at
  once", so this cache pays one extra Redis round trip (the generation) to be race free.
* **Public profiles**: one key per user (``acc:prof:v1:<user>``), read for many users in
  one ``get_many`` round trip; misses are filled by one query and one ``set_many``.  An edit
  replaces the entry with a short-lived *stale marker*: readers that meet it read the
  database and do not cache, so a reader racing the edit (or reading a lagging replica)
  cannot re-cache the old profile for ten minutes.

Cached profile entries keep two private flags (``_active``, ``_sb`` for shadow-banned) that
``accounts.visibility`` needs; they are stripped before a profile leaves this module.
Phone numbers are never cached here and never returned.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from urllib.parse import urljoin

from django.conf import settings
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.db.models import Q

from accounts.models import Block, User
from config import db_router
from config.ids import as_uuid

PROFILE_TTL_S = 600  # the plan: profiles cached 10 minutes
HIDDEN_TTL_S = 600
GENERATION_TTL_S = 7 * 24 * 3600
# Long enough for an edit to reach every replica used for reads (lagging ones are skipped).
STALE_MARKER_TTL_S = max(10, int(2 * getattr(settings, "REPLICA_MAX_LAG_S", 5)))
_STALE = "__stale__"
_PUBLIC_FIELDS = ("id", "display_name", "bio", "avatar_url", "is_verified")


# ------------------------------------------------------------------------ keys


def _profile_key(user_id) -> str:
    return f"acc:prof:v1:{user_id}"


def _hidden_gen_key(user_id) -> str:
    return f"acc:hidgen:{user_id}"


def _hidden_key(user_id, generation) -> str:
    return f"acc:hid:v1:{user_id}:{generation}"


# ---------------------------------------------------------------------- blocks


def _hidden_generation(user_id) -> int:
    """The user's current generation; a fresh one (never used before) if it was evicted."""
    key = _hidden_gen_key(user_id)
    generation = cache.get(key)
    if generation is None:
        cache.add(key, time.time_ns(), GENERATION_TTL_S)
        generation = cache.get(key)
    return generation


def bump_hidden_generation(user_id) -> None:
    """Make every cached hidden-set of ``user_id`` unreachable (called after a block changes)."""
    key = _hidden_gen_key(user_id)
    try:
        cache.incr(key)
    except ValueError:  # missing: start a generation no earlier reader can have used
        cache.set(key, time.time_ns(), GENERATION_TTL_S)


def _load_hidden_user_ids(user_id) -> set[uuid.UUID]:
    # From the primary: the set is cached under the generation a block just bumped, and a
    # lagging replica would put the pre-block set there for HIDDEN_TTL_S.
    with db_router.use_primary():
        rows = list(Block.objects.filter(Q(blocker_id=user_id) | Q(blocked_id=user_id)).values_list(
            "blocker_id", "blocked_id"
        ))
    return {blocked if blocker == user_id else blocker for blocker, blocked in rows}


def hidden_user_ids(user_id) -> set[uuid.UUID]:
    """Users that ``user_id`` blocked or that blocked ``user_id`` (each hidden from the other)."""
    user_id = as_uuid(user_id)
    if user_id is None:
        return set()
    key = _hidden_key(user_id, _hidden_generation(user_id))
    cached = cache.get(key)
    if cached is not None:
        return {uuid.UUID(value) for value in cached}
    hidden = _load_hidden_user_ids(user_id)
    cache.set(key, [str(value) for value in hidden], HIDDEN_TTL_S)
    return hidden


def is_blocked_between(a_id, b_id) -> bool:
    """True when either user blocked the other."""
    b = as_uuid(b_id)
    return b is not None and b in hidden_user_ids(a_id)


# -------------------------------------------------------------------- profiles


def avatar_url(name: str) -> str | None:
    """Public URL of an avatar file: on the CDN host when MEDIA_CDN_URL is set."""
    if not name:
        return None
    if settings.MEDIA_CDN_URL:
        return urljoin(settings.MEDIA_CDN_URL.rstrip("/") + "/", name)
    return default_storage.url(name)


def _cached_profile(user: User) -> dict:
    return {
        "id": str(user.pk),
        "display_name": user.display_name,
        "bio": user.bio,
        "avatar_url": avatar_url(user.avatar.name if user.avatar else ""),
        "is_verified": user.is_verified,
        "_active": user.is_active,
        "_sb": user.is_shadow_banned,
    }


def _gone(user_id) -> dict:
    """Cached for ids with no (active) user, so repeated lookups do not query."""
    return {"id": str(user_id), "_active": False, "_sb": False}


def _profile_entries(user_ids: Iterable) -> dict[uuid.UUID, dict]:
    """Cached entries (with private flags) for every id, active or not: one get_many round trip."""
    ids = {uid for uid in (as_uuid(value) for value in user_ids) if uid is not None}
    if not ids:
        return {}
    keys = {_profile_key(uid): uid for uid in ids}
    found = cache.get_many(list(keys))
    entries: dict[uuid.UUID, dict] = {}
    stale: set[uuid.UUID] = set()
    for key, value in found.items():
        if value == _STALE:
            stale.add(keys[key])
        else:
            entries[keys[key]] = value
    missing = ids - entries.keys()
    if missing:
        users = User.objects.filter(pk__in=missing).only(
            "id", "display_name", "bio", "avatar", "is_verified", "is_active", "is_shadow_banned"
        )
        loaded = {user.pk: _cached_profile(user) for user in users}
        for uid in missing:
            entries[uid] = loaded.get(uid) or _gone(uid)
        to_cache = {_profile_key(uid): entries[uid] for uid in missing - stale}
        if to_cache:
            cache.set_many(to_cache, PROFILE_TTL_S)
    return entries


def _public(entry: dict) -> dict:
    return {name: entry[name] for name in _PUBLIC_FIELDS}


def get_public_profiles(user_ids: Iterable) -> dict[uuid.UUID, dict]:
    """Public profiles ``{id, display_name, bio, avatar_url, is_verified}`` of active users.

    Ids of unknown or deactivated users are left out of the result.  This says nothing
    about who may see whom: filter with ``hidden_user_ids`` / ``accounts.visibility``.
    """
    return {
        uid: _public(entry) for uid, entry in _profile_entries(user_ids).items() if entry["_active"]
    }


def get_public_profile(user_id) -> dict | None:
    uid = as_uuid(user_id)
    if uid is None:
        return None
    return get_public_profiles([uid]).get(uid)


def profile_flags(user_ids: Iterable) -> dict[uuid.UUID, tuple[bool, bool]]:
    """``{id: (is_active, is_shadow_banned)}`` from the profile cache (for visibility checks)."""
    return {uid: (entry["_active"], entry["_sb"]) for uid, entry in _profile_entries(user_ids).items()}


def visible_profiles(viewer_id, user_ids: Iterable) -> dict[uuid.UUID, dict]:
    """Public profiles of ``user_ids`` that ``viewer_id`` may see in a list (crossings, connections).

    Leaves out blocked users (either way), deactivated users and shadow-banned users (except
    the viewer themself).  It does not apply the registered visibility rules: the caller's
    own query already decides who belongs in its list.
    """
    viewer = as_uuid(viewer_id)
    hidden = hidden_user_ids(viewer) if viewer else set()
    entries = _profile_entries(uid for uid in user_ids if as_uuid(uid) not in hidden)
    return {
        uid: _public(entry)
        for uid, entry in entries.items()
        if entry["_active"] and (not entry["_sb"] or uid == viewer)
    }


def invalidate_profiles(user_ids: Iterable) -> None:
    """Replace cached profiles with stale markers (called by services after commit)."""
    keys = {_profile_key(uid): _STALE for uid in user_ids}
    if keys:
        cache.set_many(keys, STALE_MARKER_TTL_S)
