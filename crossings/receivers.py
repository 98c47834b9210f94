"""Receivers of account events, connected in ``CrossingsConfig.ready()``: drop cached crossings
reads of the users concerned, after commit; the crossings step of the expiry sweep; the
detector's readiness check (``core.observability.health``); and a city's former circle kept
for sharded detection."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.observability.health import NotReady
from crossings import cache as cx_cache
from crossings import services
from crossings.models import CityArea
from crossings.selectors import crossed_ids_from_db, detector_lag_seconds


def _bump_after_commit(user_ids) -> None:
    ids = [uid for uid in user_ids if uid is not None]
    transaction.on_commit(lambda: cx_cache.bump_users(ids))


def on_block_changed(sender, blocker_id=None, blocked_id=None, **kwargs):
    _bump_after_commit([blocker_id, blocked_id])


def on_profile_changed(sender, user_id=None, **kwargs):
    """A profile or flag (deactivation, shadow ban) changed: the user's and their peers' pages."""
    if user_id is None:
        return
    _bump_after_commit([user_id, *crossed_ids_from_db(user_id)])


def sweep(now, dry_run, progress) -> int:
    """Crossings expire with locations' expiry sweep (its extension point)."""
    return services.sweep_expired_crossings(now=now, dry_run=dry_run, progress=progress)


def detector_ready() -> dict:
    """Readiness: the detector is at most READY_MAX_DETECTOR_LAG_S behind the pings."""
    lag = round(detector_lag_seconds(), 1)
    if lag > settings.READY_MAX_DETECTOR_LAG_S:
        raise NotReady(f"the crossing detector is {lag} s behind", {"lag_s": lag})
    return {"lag_s": lag}


def on_city_saving(sender, instance, raw=False, **kwargs):
    """A city's circle is about to change: keep the old one while pings assigned by it live
    (sharded detection reads a city's partition wherever its pings may be)."""
    if raw or instance.pk is None:
        return
    old = type(instance).objects.filter(pk=instance.pk).values("lat", "lng", "radius_km").first()
    if old is None or (old["lat"], old["lng"], old["radius_km"]) == (instance.lat, instance.lng, instance.radius_km):
        return
    hours = settings.PING_RETENTION_HOURS + 1  # pings expire PING_RETENTION_HOURS after recorded_at
    CityArea.objects.create(city_id=instance.pk, kept_until=timezone.now() + timedelta(hours=hours), **old)
