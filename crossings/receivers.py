"""Receivers of account events, connected in ``CrossingsConfig.ready()``: drop cached crossings
reads of the users concerned, after commit; the crossings step of the expiry sweep; and the
detector's readiness check (``core.observability.health``)."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from core.observability.health import NotReady
from crossings import cache as cx_cache
from crossings import services
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
