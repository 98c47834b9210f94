"""Reads about users that other apps may call: blocks, hidden users and public profiles.

Hidden users and profiles are cached on versioned keys (namespaces ``acc-hid``, ``acc-prof``),
invalidated by ``accounts.services`` after commit.  Phone numbers are never returned.
Design: docs/subsystems/read-caches.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from urllib.parse import urljoin

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import Q

from accounts.models import Block, User
from core.cache import keys as cachekeys
from core.db import router as db_router
from core.ids import as_uuid

PROFILE_NS = "acc-prof"
HIDDEN_NS = "acc-hid"
_PUBLIC_FIELDS = ("id", "display_name", "bio", "avatar_url", "is_verified")


# ---------------------------------------------------------------------- blocks


def bump_hidden(*user_ids) -> None:
    """Make every cached hidden set of these users unreachable (called after a block changes)."""
    cachekeys.bump_many((HIDDEN_NS, uid) for uid in user_ids)


def load_hidden_user_ids(user_id) -> set[uuid.UUID]:
    # From the primary: a lagging replica would put the pre-block set under the new version.
    with db_router.use_primary():
        rows = list(Block.objects.filter(Q(blocker_id=user_id) | Q(blocked_id=user_id)).values_list(
            "blocker_id", "blocked_id"
        ))
    return {blocked if blocker == user_id else blocker for blocker, blocked in rows}


def hidden_key(user_id) -> tuple[str, str, str]:
    """The ``core.cache.keys`` entry of ``user_id``'s hidden set, to read it in another app's batch."""
    return (HIDDEN_NS, str(user_id), "")


def hidden_from(batch: cachekeys.Batch, user_id: uuid.UUID) -> set[uuid.UUID]:
    """The hidden set from a batch that read ``hidden_key(user_id)``; loaded (and filled) on a miss."""
    key = hidden_key(user_id)
    if key in batch.hits:
        return {uuid.UUID(value) for value in batch.hits[key]}
    hidden = load_hidden_user_ids(user_id)
    batch.fill({key: [str(value) for value in hidden]}, settings.PROFILE_CACHE_S)
    return hidden


def hidden_user_ids(user_id) -> set[uuid.UUID]:
    """Users that ``user_id`` blocked or that blocked ``user_id`` (each hidden from the other)."""
    user_id = as_uuid(user_id)
    if user_id is None:
        return set()
    return hidden_from(cachekeys.read_entries([hidden_key(user_id)]), user_id)


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
        "avatar_url": avatar_url((user.avatar.name or "") if user.avatar else ""),
        "is_verified": user.is_verified,
        "_active": user.is_active,
        "_sb": user.is_shadow_banned,
    }


def _gone(user_id) -> dict:
    """Cached for ids with no (active) user, so repeated lookups do not query."""
    return {"id": str(user_id), "_active": False, "_sb": False}


def profile_key(user_id) -> tuple[str, str, str]:
    """The ``core.cache.keys`` entry of ``user_id``'s cached profile."""
    return (PROFILE_NS, str(user_id), "")


def _profile_keys(ids: Iterable[uuid.UUID]) -> list[tuple]:
    return [profile_key(uid) for uid in ids]


def _profiles_from(batch: cachekeys.Batch, ids: set[uuid.UUID]) -> dict[uuid.UUID, dict]:
    """Entries of ``ids`` from a batch that read them; misses loaded in one query (primary) and filled."""
    entries = {uid: batch.hits[key] for uid in ids if (key := profile_key(uid)) in batch.hits}
    missing = ids - entries.keys()
    if missing:
        with db_router.use_primary():
            users = User.objects.filter(pk__in=missing).only(
                "id", "display_name", "bio", "avatar", "is_verified", "is_active", "is_shadow_banned"
            )
            loaded = {user.pk: _cached_profile(user) for user in users}
        fresh = {uid: loaded.get(uid) or _gone(uid) for uid in missing}
        batch.fill({profile_key(uid): entry for uid, entry in fresh.items()}, settings.PROFILE_CACHE_S)
        entries.update(fresh)
    return entries


def _ids(user_ids: Iterable) -> set[uuid.UUID]:
    return {uid for uid in (as_uuid(value) for value in user_ids) if uid is not None}


def _profile_entries(user_ids: Iterable) -> dict[uuid.UUID, dict]:
    """Cached entries (with private flags) for every id, active or not: one round trip."""
    ids = _ids(user_ids)
    if not ids:
        return {}
    return _profiles_from(cachekeys.read_entries(_profile_keys(ids)), ids)


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


def flags_from(batch: cachekeys.Batch, user_id: uuid.UUID) -> tuple[bool, bool]:
    """``profile_flags`` of one user from a batch that read ``profile_key(user_id)`` (to read it
    in another app's batch, as ``hidden_from``); loaded (and filled) on a miss."""
    entry = _profiles_from(batch, {user_id})[user_id]
    return entry["_active"], entry["_sb"]


def visible_profiles(viewer_id, user_ids: Iterable) -> dict[uuid.UUID, dict]:
    """Public profiles of ``user_ids`` that ``viewer_id`` may see in a list (crossings, connections).

    Leaves out blocked users (either way), deactivated users and shadow-banned users (except
    the viewer themself).  It does not apply the registered visibility rules: the caller's
    own query already decides who belongs in its list.  One round trip when all is cached.
    """
    viewer = as_uuid(viewer_id)
    ids = _ids(user_ids)
    if not ids:
        return {}
    batch = cachekeys.read_entries(([hidden_key(viewer)] if viewer else []) + _profile_keys(ids))
    hidden = hidden_from(batch, viewer) if viewer else set()
    entries = _profiles_from(batch, ids - hidden)
    return {
        uid: _public(entry)
        for uid, entry in entries.items()
        if entry["_active"] and (not entry["_sb"] or uid == viewer)
    }


def invalidate_profiles(user_ids: Iterable) -> None:
    """Drop cached profiles of these users (called by services after commit)."""
    cachekeys.bump_many((PROFILE_NS, uid) for uid in _ids(user_ids))


def matchable_users_sql() -> str:
    """SQL selecting the ids of users whose pings may match now (docs/crossings.md): active,
    phone-verified, not shadow-banned, not in ghost mode.  Judged when the detector runs, so a
    change of state acts on the pings already stored."""
    return (f"SELECT id FROM {User._meta.db_table} "
            "WHERE is_active AND is_verified AND NOT is_shadow_banned AND NOT ghost_mode")


def block_between_sql(a_column: str, b_column: str) -> str:
    """SQL condition: the users in columns ``a_column`` and ``b_column`` have a block either way."""
    table = Block._meta.db_table
    return (f"EXISTS (SELECT 1 FROM {table} b WHERE (b.blocker_id = {a_column} AND b.blocked_id = {b_column}) "
            f"OR (b.blocker_id = {b_column} AND b.blocked_id = {a_column}))")
