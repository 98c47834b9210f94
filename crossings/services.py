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
from crossings.models import Crossing

# Lock the expired records of a batch in the detector's key order, each checked again once
# locked (a detection that merged into one meanwhile has moved its last crossing on), then
# delete them.
_EXPIRE_SQL = """
WITH doomed AS (
    SELECT id FROM crossings WHERE id = ANY(%(ids)s) AND last_crossed_at < %(cutoff)s
    ORDER BY user_low_id, user_high_id FOR UPDATE
)
DELETE FROM crossings c USING doomed d WHERE c.id = d.id
RETURNING c.id, c.user_low_id, c.user_high_id
"""


def sweep_expired_crossings(now=None, dry_run: bool = False, progress=None) -> int:
    """Delete crossings whose last match is older than CROSSING_RETENTION_DAYS (docs/crossings.md).

    A detection locks the records it merges into (crossings.detection.run, ``_LOCK_SQL``) and
    the sweep locks the ones it deletes, in the same key order; a record is deleted only if
    it is still expired once locked, so a running detection never merges into a record that
    is being deleted, nor is a record it just merged into deleted.  Returns how many records
    were (or, with ``dry_run``, would be) deleted.
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
            ids = list(expired.values_list("id", flat=True)[:5000])
            if not ids:
                break
            with connection.cursor() as cursor:
                cursor.execute(_EXPIRE_SQL, {"ids": ids, "cutoff": cutoff})
                batch = cursor.fetchall()
            users = {uid for _id, low, high in batch for uid in (low, high)}
            if users:
                transaction.on_commit(functools.partial(cx_cache.bump_users, users))
        total += len(batch)
        if progress and batch:
            progress(f"deleted {len(batch)} expired crossings")
    return total
