"""Writes of the crossings app outside detection: the expiry of crossing records.

The detector (crossings/detection/run.py) records crossings itself.
"""

from __future__ import annotations

import functools
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from crossings import cache as cx_cache
from crossings.detection.run import lock_records
from crossings.models import Crossing


def sweep_expired_crossings(now=None, dry_run: bool = False, progress=None) -> int:
    """Delete crossings whose last match is older than CROSSING_RETENTION_DAYS (docs/crossings.md).

    It holds the records' lock of the detector (``lock_records``), so a running detection
    never merges into a record that is being deleted.  Returns how many records were (or,
    with ``dry_run``, would be) deleted.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.CROSSING_RETENTION_DAYS)
    expired = Crossing.objects.filter(last_crossed_at__lt=cutoff)
    if dry_run:
        count = expired.count()
        if progress and count:
            progress(f"would delete {count} crossings last crossed before {cutoff:%Y-%m-%d %H:%M}")
        return count
    total = 0
    while True:
        with transaction.atomic():
            with connection.cursor() as cursor:
                lock_records(cursor)
            batch = list(expired.values_list("id", "user_low_id", "user_high_id")[:5000])
            if not batch:
                break
            Crossing.objects.filter(pk__in=[row[0] for row in batch]).delete()
            users = {uid for _id, low, high in batch for uid in (low, high)}
            transaction.on_commit(functools.partial(cx_cache.bump_users, users))
        total += len(batch)
        if progress:
            progress(f"deleted {len(batch)} expired crossings")
    return total
