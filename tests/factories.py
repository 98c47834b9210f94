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
    password = fields.pop("password", DEFAULT_PASSWORD)
    fields.setdefault("display_name", f"User {next(_phones)}")
    phone = fields.pop("phone", None) or next_phone()
    return User.objects.create_user(phone, password, **fields)


def make_crossing(a, b, at=None, times=1, *, lat=52.52, lng=13.405):
    """A crossing record between users ``a`` and ``b`` (last crossed ``at``, default now)."""
    from datetime import timedelta

    from django.utils import timezone

    from crossings import cache as cx_cache
    from crossings.models import Crossing
    from crossings.services import coarse_place

    at = at or timezone.now()
    low, high = sorted([a.pk, b.pk])
    place_lat, place_lng, cell = coarse_place(lat, lng)
    starts = [int((at - timedelta(hours=2 * (times - 1 - i))).timestamp() * 1_000_000) for i in range(times)]
    crossing = Crossing.objects.create(
        user_low_id=low, user_high_id=high, first_crossed_at=at - timedelta(hours=2 * (times - 1)),
        last_crossed_at=at, times=times, place_lat=place_lat, place_lng=place_lng, place_cell=cell,
        encounter_starts=starts, encounter_ends=starts,
    )
    cx_cache.bump_users([low, high])
    return crossing
