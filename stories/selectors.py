"""Reads of stories: the feed, nearby stories, one story; all built from batched caches.

One cache entry per author; per-viewer rules (expiry, blocks, visibility) apply on every read.
Design: docs/subsystems/read-caches.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import h3
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from accounts import selectors as account_selectors
from connections import selectors as connection_selectors
from core import geo
from core.cache import keys as cachekeys
from core.db import router as db_router
from core.ids import as_uuid
from stories.media import media_url
from stories.models import CloseFriend, Story, Visibility

AUTHOR_NS = "stories"
NEARBY_CANDIDATES = 200  # per radius, newest first, before per-viewer filtering
NEARBY_LIMIT = 50


def story_dict(story: Story) -> dict:
    """A story as cached and returned (the author's profile is added at read time)."""
    return {
        "id": str(story.id),
        "author_id": str(story.author_id),
        "kind": story.kind,
        "text": story.text,
        "caption": story.caption,
        "media_url": media_url((story.media.name or "") if story.media else ""),
        "media_type": story.media_type or None,
        "visibility": story.visibility,
        "created_at": story.created_at,
        "expires_at": story.expires_at,
        "_cell": story.place_cell,
        "_lat": story.place_lat,
        "_lng": story.place_lng,
    }


def public_story(item: dict) -> dict:
    return {k: v for k, v in item.items() if not k.startswith("_")}


def live_stories():
    return Story.objects.filter(expires_at__gt=timezone.now())


def _load_entries(author_ids: list[str]) -> dict[str, dict]:
    """Entries of many authors: two queries in all (stories, close friends), from the primary."""
    entries: dict[str, dict[str, list]] = {aid: {"stories": [], "close_friends": []} for aid in author_ids}
    with db_router.use_primary():
        for story in live_stories().filter(author_id__in=author_ids).order_by("-created_at"):
            entries[str(story.author_id)]["stories"].append(story_dict(story))
        friends = CloseFriend.objects.filter(author_id__in=author_ids)  # type: ignore[misc]  # str ids work
        for author, friend in friends.values_list("author_id", "friend_id"):
            entries[str(author)]["close_friends"].append(str(friend))
    return entries


def author_entries(author_ids: Iterable) -> dict[str, dict]:
    """``{author_id: {"stories": [...], "close_friends": [...]}}`` from the cache, batched."""
    batch = cachekeys.get_many_versioned(AUTHOR_NS, author_ids)
    missing = batch.missing()
    if missing:
        batch.fill(_load_entries(missing), settings.STORY_FEED_CACHE_S)
    return batch.hits


def close_friend_ids(author_id) -> set[str]:
    return set(author_entries([author_id]).get(str(author_id), {}).get("close_friends", []))


def _may_see(viewer: str, author: str, visibility: str, close_friends, connected: bool) -> bool:
    if viewer == author or visibility == Visibility.PUBLIC:
        return True
    if not connected:
        return False
    return visibility == Visibility.CONNECTIONS or viewer in close_friends


def _live(items: list[dict], now) -> list[dict]:
    return [item for item in items if item["expires_at"] > now]


def feed(viewer_id) -> list[dict]:
    """Live stories of the viewer's connections that the viewer may see, plus their own,
    grouped by author; groups ordered by their newest story, stories newest first."""
    viewer = str(viewer_id)
    connected = {str(uid) for uid in connection_selectors.accepted_connection_ids(viewer_id)}
    authors = connected | {viewer}
    profiles = {str(uid): p for uid, p in account_selectors.visible_profiles(viewer_id, authors).items()}
    entries = author_entries(profiles)
    now = timezone.now()
    groups: list[dict] = []
    for author, entry in entries.items():
        stories = [public_story(item) for item in _live(entry["stories"], now)
                   if _may_see(viewer, author, item["visibility"], entry["close_friends"], author in connected)]
        if stories:
            groups.append({"author": profiles[author], "stories": stories})
    groups.sort(key=lambda group: (group["author"]["id"] != viewer, -group["stories"][0]["created_at"].timestamp()))
    return groups


def visible_story(viewer_id, story_id) -> dict | None:
    """One live story if ``viewer_id`` may see it, else None (absent or hidden: the same 404)."""
    sid = as_uuid(story_id)
    if sid is None:
        return None
    story = live_stories().filter(pk=sid).first()
    if story is None:
        return None
    viewer, author = str(viewer_id), str(story.author_id)
    profile = account_selectors.visible_profiles(viewer_id, [author]).get(story.author_id)
    if profile is None:
        return None
    connected = viewer != author and connection_selectors.are_connected(viewer, author)
    close_friends = close_friend_ids(author) if story.visibility == Visibility.CLOSE_FRIENDS else ()
    if not _may_see(viewer, author, story.visibility, close_friends, connected):
        return None
    return {**public_story(story_dict(story)), "author": profile}


# ------------------------------------------------------------------------- nearby


def _disk_k(radius_km: float) -> int:
    # Neighbouring resolution-7 centres are >= ~2.0 km apart (edge >= 1.16 km, times sqrt 3);
    # one ring more covers points near the edge of the centre cell.
    return math.ceil(radius_km / 2.0) + 1


def _candidates_within(cell: str, centre: tuple[float, float], radius_km: float) -> list[tuple]:
    """``(story_id, author_id, distance_km, created_at)`` of live public stories within the radius."""
    cells = list(h3.grid_disk(cell, _disk_k(radius_km)))
    with db_router.use_primary():
        rows = (live_stories().filter(visibility=Visibility.PUBLIC, place_cell__in=cells)
                .order_by("-created_at").values_list("id", "author_id", "place_lat", "place_lng", "created_at")
                [: NEARBY_CANDIDATES * 4])
        out = []
        for sid, author, lat, lng, created_at in rows:
            distance = geo.haversine_m(centre[0], centre[1], lat, lng) / 1000
            if distance <= radius_km:
                out.append((str(sid), str(author), round(distance, 1), created_at))
        return out[:NEARBY_CANDIDATES]


def _nearby_candidates(cell: str) -> dict:
    """Widen 5 → 10 → 15 → 20 km until enough stories are found; cached per cell briefly."""
    key = f"stories:nearby:{cell}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    centre = h3.cell_to_latlng(cell)
    radii = settings.STORY_NEARBY_RADII_KM
    for radius in radii:
        found = _candidates_within(cell, centre, radius)
        if len(found) >= settings.STORY_NEARBY_ENOUGH:
            break
    result = {"radius_km": radius, "candidates": found}
    cache.set(key, result, settings.STORY_NEARBY_CACHE_S)
    return result


def nearby(viewer_id, lat: float, lng: float) -> dict:
    """Live public stories near a point, with the radius that was used.

    Candidates come from the per-cell cache; each is then checked against its author's
    entry (fresh: a deleted or removed story is gone at once), blocks and profiles, and the
    viewer's own public stories nearby are added (their post shows at once).
    """
    viewer = str(viewer_id)
    cell, centre_lat, centre_lng = geo.coarse_place(lat, lng)
    found = _nearby_candidates(cell)
    radius = found["radius_km"]
    candidates = found["candidates"][: NEARBY_LIMIT * 2]
    authors = {author for _sid, author, _d, _t in candidates} | {viewer}
    profiles = {str(uid): p for uid, p in account_selectors.visible_profiles(viewer_id, authors).items()}
    entries = author_entries(profiles)
    now = timezone.now()
    by_id = {item["id"]: item for entry in entries.values() for item in _live(entry["stories"], now)
             if item["visibility"] == Visibility.PUBLIC}
    distances = {sid: distance for sid, author, distance, _t in candidates if author in profiles}
    for item in _live(entries.get(viewer, {}).get("stories", []), now):
        if item["visibility"] == Visibility.PUBLIC and item["_lat"] is not None and item["id"] not in distances:
            distance = round(geo.haversine_m(centre_lat, centre_lng, item["_lat"], item["_lng"]) / 1000, 1)
            if distance <= radius:
                distances[item["id"]] = distance
    results = [{**public_story(by_id[sid]), "author": profiles[by_id[sid]["author_id"]], "distance_km": d}
               for sid, d in distances.items() if sid in by_id]
    results.sort(key=lambda item: item["created_at"], reverse=True)
    results = results[:NEARBY_LIMIT]
    return {"radius_km": radius, "expanded": radius > settings.STORY_NEARBY_RADII_KM[0],
            "enough": len(results) >= settings.STORY_NEARBY_ENOUGH, "count": len(results),
            "next": None, "previous": None, "results": results}


def close_friends_of(author_id) -> list[dict]:
    """The author's close-friends list, as public profiles (only current connections)."""
    ids = close_friend_ids(author_id)
    connected = {str(uid) for uid in connection_selectors.accepted_connection_ids(author_id)}
    profiles = account_selectors.visible_profiles(author_id, ids & connected)
    return sorted(profiles.values(), key=lambda p: p["display_name"])


