"""Reads about crossings that other apps and the API may call, and the detector lag.

Visibility is decided at read time (blocks, deactivation, shadow bans act at once).
Design: docs/subsystems/read-caches.md.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, router
from django.db.models import Q, QuerySet

from accounts import selectors as account_selectors
from core.db.lookup import Compiled, compile_query, fetch_rows
from core.ids import as_uuid
from crossings import cache as cx_cache
from crossings.models import Crossing, DetectorState
from locations import selectors as location_selectors


def pair(a_id, b_id) -> tuple[uuid.UUID, uuid.UUID]:
    """The ordered (low, high) pair of two user ids, as stored."""
    a, b = as_uuid(a_id), as_uuid(b_id)
    if a is None or b is None:
        raise ValueError(f"not a pair of user ids: {a_id!r}, {b_id!r}")
    return (a, b) if a < b else (b, a)


_USER_PLACEHOLDER = uuid.UUID(int=0xC0FFEE)
_compiled_pairs: dict[str, Compiled] = {}


def crossed_ids_from_db(user_id: uuid.UUID) -> set[uuid.UUID]:
    """Everyone ``user_id`` has a crossing record with: the pairs' SELECT compiled by the ORM
    once per alias (compiling it was half of its 0.3 ms)."""
    alias = router.db_for_read(Crossing) or DEFAULT_DB_ALIAS
    compiled = _compiled_pairs.get(alias)
    if compiled is None:
        qs = Crossing.objects.using(alias).filter(Q(user_low_id=_USER_PLACEHOLDER) | Q(user_high_id=_USER_PLACEHOLDER))
        compiled = _compiled_pairs[alias] = compile_query(qs.values_list("user_low_id", "user_high_id"), alias,
                                                          [_USER_PLACEHOLDER, _USER_PLACEHOLDER])
    uid = as_uuid(user_id)
    return {high if low == uid else low for low, high in fetch_rows(compiled, alias, [uid, uid])}


def _crossed(a: uuid.UUID | None, b: uuid.UUID | None) -> bool:
    """``a`` has a crossing record with ``b`` (no visibility applied): the cached id strings of
    everyone ``a`` crossed, no UUID built per id."""
    if a is None or b is None or a == b:
        return False
    return str(b) in cx_cache.cached(a, "ids", lambda: [str(value) for value in crossed_ids_from_db(a)])


def have_crossed(a_id, b_id) -> bool:
    """True when ``a`` and ``b`` have a crossing that ``a`` may see (no block, ``b`` visible)."""
    a, b = as_uuid(a_id), as_uuid(b_id)
    return _crossed(a, b) and b in account_selectors.visible_profiles(a, [b])


def crossed_rule_entries(viewer_id, target_id) -> list[tuple[str, str, str]]:
    """The cached entry ``crossed_rule`` reads (for accounts.visibility.profile_reads)."""
    return [(cx_cache.NAMESPACE, str(viewer_id), "ids")]


def crossed_rule(viewer_id, target_id) -> bool:
    """Profile visibility rule registered with accounts: having crossed shows the profile.

    accounts.visibility.can_view_profile checks blocks, deactivation and shadow bans before any
    rule, so this asks only about the crossing (``have_crossed`` would read those checks again:
    0.87x the profile read's CPU without them, bench/scenarios/profile_rule.py)."""
    return _crossed(as_uuid(viewer_id), as_uuid(target_id))


def visible_crossings(user_id) -> QuerySet[Crossing]:
    """The user's crossings that they may see, for the feed (order it yourself)."""
    uid = as_uuid(user_id)
    return _visible(uid, account_selectors.hidden_user_ids(uid))


def _visible(uid: uuid.UUID | None, hidden) -> QuerySet[Crossing]:
    """``visible_crossings`` with the user's hidden set given."""
    as_low = Q(user_low_id=uid, user_high__is_active=True) & (
        Q(user_high__is_shadow_banned=False)
    )
    as_high = Q(user_high_id=uid, user_low__is_active=True) & Q(user_low__is_shadow_banned=False)
    if hidden:
        as_low &= ~Q(user_high_id__in=hidden)
        as_high &= ~Q(user_low_id__in=hidden)
    return (Crossing.objects.filter(as_low | as_high).select_related("city")
            .defer("encounter_starts", "encounter_ends"))


def get_visible_crossing(user_id, crossing_id) -> Crossing | None:
    cid = as_uuid(crossing_id)
    if cid is None:
        return None
    return visible_crossings(user_id).filter(pk=cid).first()


def _minute(value: datetime) -> datetime:
    return value.replace(second=0, microsecond=0)


def crossing_row(crossing: Crossing, viewer_id) -> dict:
    """What may be shown of a crossing to ``viewer_id`` (no profile yet): coarse place and times."""
    return _shown(crossing.pk, crossing.user_low_id, crossing.user_high_id, crossing.first_crossed_at,
                  crossing.last_crossed_at, crossing.times, crossing.place_lat, crossing.place_lng,
                  crossing.place_cell, crossing.city.name if crossing.city_id and crossing.city else None,
                  viewer_id=viewer_id)


# ``_shown``'s arguments as columns of a query (the city by name), in this order.
_ROW_COLUMNS = ("id", "user_low_id", "user_high_id", "first_crossed_at", "last_crossed_at", "times", "place_lat",
                "place_lng", "place_cell", "city__name")


def _shown(pk, low, high, first_crossed_at, last_crossed_at, times, lat, lng, cell, city, *, viewer_id) -> dict:
    return {
        "id": str(pk),
        "user_id": str(high if str(low) == str(viewer_id) else low),
        "first_crossed_at": _minute(first_crossed_at),
        "last_crossed_at": _minute(last_crossed_at),
        "times": times,
        "place": {"lat": round(lat, 5), "lng": round(lng, 5), "cell": cell, "city": city},
    }


def with_profiles(viewer_id, rows: list[dict]) -> list[dict]:
    """Attach public profiles, dropping rows whose other user the viewer may not see (now)."""
    profiles = account_selectors.visible_profiles(viewer_id, [row["user_id"] for row in rows])
    items = []
    for row in rows:
        profile = profiles.get(uuid.UUID(row["user_id"]))
        if profile is None:
            continue
        item = {key: value for key, value in row.items() if key != "user_id"}
        item["user"] = profile
        items.append(item)
    return items


def crossings_page(user_id, cursor: tuple[str, uuid.UUID] | None, size: int) -> tuple[list[dict], bool, bool] | None:
    """One page of the user's visible crossings, newest encounter first, without profiles:
    ``(rows, has_next, has_previous)``, or None when the cursor names no visible crossing.

    Keyset pagination on (last_crossed_at, id); a cursor is ``("n", id)`` (after that
    crossing) or ``("p", id)`` (before it), never a time (it would carry another user's ping
    time).  The first page is cached under the user's crossings version.
    """
    if cursor is None:
        first = cx_cache.cached(user_id, f"page:{size}", lambda: first_page(user_id, size))
        return first["rows"], first["next"], False
    return _rows_after(user_id, cursor, size)


_NEWEST_FIRST = ("-last_crossed_at", "-id")
_compiled_first: dict[str, tuple[Compiled, str]] = {}


def _first_page_sql(alias: str) -> tuple[Compiled, str]:
    """The first page's SELECT for a user who hides no one, compiled by the ORM once per alias,
    with ``LIMIT %s``: building and compiling it was 0.64 of a cache miss's 1.5 ms."""
    compiled = _compiled_first.get(alias)
    if compiled is None:
        qs = _visible(_USER_PLACEHOLDER, set()).using(alias).order_by(*_NEWEST_FIRST).values_list(*_ROW_COLUMNS)
        query = compile_query(qs, alias, [_USER_PLACEHOLDER, _USER_PLACEHOLDER])
        compiled = _compiled_first[alias] = (query, f"{query.sql} LIMIT %s")
    return compiled


def first_page(user_id, size: int) -> dict:
    """The first page of ``crossings_page`` as it is cached (``{"rows", "next"}``), read now."""
    uid = as_uuid(user_id)
    hidden = account_selectors.hidden_user_ids(uid)
    if hidden:  # NOT IN takes a parameter per hidden user: the ORM compiles this one
        rows = list(_visible(uid, hidden).order_by(*_NEWEST_FIRST).values_list(*_ROW_COLUMNS)[: size + 1])
    else:
        alias = router.db_for_read(Crossing) or DEFAULT_DB_ALIAS
        query, sql = _first_page_sql(alias)
        rows = fetch_rows(query, alias, [uid, uid, size + 1], sql)
    return {"rows": [_shown(*row, viewer_id=uid) for row in rows[:size]], "next": len(rows) > size}


def _rows_after(user_id, cursor: tuple[str, uuid.UUID], size: int) -> tuple[list[dict], bool, bool] | None:
    qs = visible_crossings(user_id)
    direction, anchor_id = cursor
    anchor = qs.filter(pk=anchor_id).values("last_crossed_at", "id").first()
    if anchor is None:
        return None
    last, aid = anchor["last_crossed_at"], anchor["id"]
    if direction == "n":
        after = Q(last_crossed_at__lt=last) | Q(last_crossed_at=last, id__lt=aid)
        page = list(qs.filter(after).order_by("-last_crossed_at", "-id")[: size + 1])
        return [crossing_row(c, user_id) for c in page[:size]], len(page) > size, True
    before = Q(last_crossed_at__gt=last) | Q(last_crossed_at=last, id__gt=aid)
    page = list(qs.filter(before).order_by("last_crossed_at", "id")[: size + 1])
    rows = [crossing_row(c, user_id) for c in reversed(page[:size])]
    return rows, True, len(page) > size


def detector_lag_seconds() -> float:
    """Age in seconds of the oldest matchable ping the detector has not processed (0: caught up).

    Read on the primary, where the detector writes its watermark.
    With detection shards, the most behind shard's (docs/subsystems/detection.md, "Shards").
    """
    count = int(settings.CROSSING_SHARDS)
    states = {s.pk - 1: s for s in DetectorState.objects.using("default").filter(shards=count)}
    if count == 1:
        state = states.get(0)
        if state is None:  # the detector never ran: every ping of the last day waits
            return location_selectors.oldest_ping_age_since(None)
        return location_selectors.oldest_ping_age_since(state.xid_watermark, state.received_after)
    lags = []
    for index in range(count):
        state = states.get(index)
        if state is None:  # not yet made for this shard count: every ping of the last day waits
            lags.append(location_selectors.oldest_ping_age_since(None, shard=(index, count)))
        else:
            lags.append(location_selectors.oldest_ping_age_since(state.xid_watermark, state.received_after,
                                                                 shard=(index, count)))
    return max(lags)
