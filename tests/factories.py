"""Builders for test data.  Each returns saved rows with sensible defaults."""

from __future__ import annotations

import itertools

from accounts.models import User

_phones = itertools.count(1)
DEFAULT_PASSWORD = "correct-horse-battery"


def next_phone() -> str:
    # +1 202 555 01xx..: valid North American numbers reserved for fiction, unique per call.
    n = next(_phones)
    return f"+1202{5550000 + n:07d}"


def make_user(**fields) -> User:
    """A user as registration leaves it (phone not verified unless ``is_verified=True``)."""
    password = fields.pop("password", DEFAULT_PASSWORD)
    fields.setdefault("display_name", f"User {next(_phones)}")
    phone = fields.pop("phone", None) or next_phone()
    return User.objects.create_user(phone, password, **fields)


def make_verified_user(**fields) -> User:
    """A user whose phone is verified: only such users' pings are ever matched."""
    fields.setdefault("is_verified", True)
    return make_user(**fields)


def make_crossing(a, b, at=None, times=1, *, lat=52.52, lng=13.405):
    """A crossing record between users ``a`` and ``b`` (last crossed ``at``, default now)."""
    from datetime import timedelta

    from django.utils import timezone

    from core.geo import coarse_place
    from crossings import cache as cx_cache
    from crossings.models import Crossing

    at = at or timezone.now()
    low, high = sorted([a.pk, b.pk])
    cell, place_lat, place_lng = coarse_place(lat, lng)
    starts = [int((at - timedelta(hours=2 * (times - 1 - i))).timestamp() * 1_000_000) for i in range(times)]
    crossing = Crossing.objects.create(
        user_low_id=low, user_high_id=high, first_crossed_at=at - timedelta(hours=2 * (times - 1)),
        last_crossed_at=at, times=times, place_lat=place_lat, place_lng=place_lng, place_cell=cell,
        encounter_starts=starts, encounter_ends=starts,
    )
    cx_cache.bump_users([low, high])
    return crossing


def make_city(slug="berlin", *, name=None, lat=52.52, lng=13.405, radius_km=25.0, active=True):
    """A city with its partitions (through the service, as the admin and add_city do)."""
    from locations import services

    return services.create_city(slug=slug, name=name or slug.title(), lat=lat, lng=lng,
                                radius_km=radius_km, active=active)


def ingest(user, *pings, now=None):
    """Ingest pings given as ``(lat, lng, recorded_at[, accuracy_m])`` through the service.

    Without ``now`` the pings count as received live, when the newest of them was recorded
    (tests that build a history need its pings matchable); pass ``now`` to test lateness.
    """
    from django.utils import timezone

    from locations import services
    from locations.validation import PingIn

    batch = [PingIn(p[2], p[0], p[1], p[3] if len(p) > 3 else None) for p in pings]
    if now is None and batch:
        now = min(max(p.recorded_at for p in batch), timezone.now())
    return services.ingest_pings(user, batch, now=now)


def make_ping(user, lat=52.52, lng=13.405, recorded_at=None, accuracy_m=None):
    """Store one ping of ``user`` (plausibility applies) and return the stored row."""
    from django.utils import timezone

    from locations.models import Ping

    recorded_at = recorded_at or timezone.now()
    ingest(user, (lat, lng, recorded_at, accuracy_m))
    return Ping.objects.get(user_id=user.pk, recorded_at=recorded_at)


def make_connection(a, b, status="accepted"):
    """A connection between users ``a`` (the requester) and ``b``, with caches invalidated."""
    from django.utils import timezone

    from connections.models import Connection
    from connections.selectors import CONN_NS
    from core.cache import keys as cachekeys

    low, high = sorted([a.pk, b.pk])
    now = timezone.now()
    conn = Connection.objects.create(user_low_id=low, user_high_id=high, requester_id=a.pk, status=status,
                                     responded_at=now if status != "pending" else None)
    cachekeys.bump_many([(CONN_NS, low), (CONN_NS, high)])
    return conn


def make_story(author, text="hello", visibility="connections", *, lat=None, lng=None, hours_left=None):
    """A text story through the service (``hours_left`` backdates it so it expires sooner)."""
    from datetime import timedelta

    from stories import services
    from stories.models import Story

    story = services.create_story(author_id=author.pk, text=text, visibility=visibility, lat=lat, lng=lng)
    if hours_left is not None:
        from core.cache import keys as cachekeys

        Story.objects.filter(pk=story.pk).update(expires_at=story.created_at + timedelta(hours=hours_left))
        cachekeys.bump("stories", author.pk)
        story.refresh_from_db()
    return story
