"""The durable per-user event log behind the WebSocket layer, and each user's sequence counter.

Rows are written by ``realtime.events.record`` (seq allocated per user in the same
transaction) and pruned after ``REALTIME_EVENT_RETENTION_HOURS`` by beat.
Design: docs/realtime.md.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Cursor(models.Model):
    """The last ``seq`` given to a user's events: one row per user, bumped atomically.

    No foreign key to the user: the log is deleted with the account by the ``user_erasing``
    receiver, not by Django's cascade (which would load every row first).
    """

    user_id = models.UUIDField(primary_key=True)
    last_seq = models.BigIntegerField(default=0)

    class Meta:
        db_table = "realtime_cursor"

    def __str__(self) -> str:
        return f"{self.user_id} at {self.last_seq}"


class Event(models.Model):
    """One event for one user, numbered by ``seq`` (strictly increasing per user, never reused)."""

    id = models.BigAutoField(primary_key=True)
    user_id = models.UUIDField()
    seq = models.BigIntegerField()
    type = models.CharField(max_length=40)
    payload = models.JSONField(default=dict)
    # The other person the event is about (a block hides it from replays), if any.
    peer_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "realtime_event"
        constraints = [models.UniqueConstraint(fields=["user_id", "seq"], name="uniq_realtime_event_user_seq")]
        indexes = [models.Index(fields=["created_at"], name="idx_realtime_event_created")]

    def __str__(self) -> str:
        return f"{self.type} #{self.seq} for {self.user_id}"
