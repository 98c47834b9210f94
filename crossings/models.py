"""Crossing records (one per unordered pair of users) and the detector's durable state.

A record keeps its pair's encounter intervals (private) beside what the API shows.
Design: docs/subsystems/detection.md.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import F, Q

from core.ids import uuid7


class Crossing(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    user_low = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="+", db_index=False)
    user_high = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="+", db_index=False)
    first_crossed_at = models.DateTimeField()
    last_crossed_at = models.DateTimeField()
    times = models.PositiveIntegerField(default=1, help_text="Number of encounters (docs/crossings.md).")
    # Where the latest match happened, coarsened to an H3 resolution-7 cell (about 1.2 km edge).
    place_lat = models.FloatField()
    place_lng = models.FloatField()
    place_cell = models.CharField(max_length=16)
    city = models.ForeignKey("locations.City", null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+", db_constraint=False)
    encounter_starts = ArrayField(models.BigIntegerField(), default=list,
                                  help_text="Encounter starts, epoch microseconds (private).")
    encounter_ends = ArrayField(models.BigIntegerField(), default=list,
                                help_text="Encounter ends, epoch microseconds (private).")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "crossings"
        constraints = [
            models.CheckConstraint(condition=Q(user_low__lt=F("user_high")), name="crossing_pair_ordered"),
            models.UniqueConstraint(fields=["user_low", "user_high"], name="uniq_crossing_pair"),
        ]
        indexes = [
            # The feed: a user's crossings newest first, from either side of the pair.
            models.Index(F("user_low"), F("last_crossed_at").desc(), F("id").desc(), name="idx_crossings_low_last"),
            models.Index(F("user_high"), F("last_crossed_at").desc(), F("id").desc(), name="idx_crossings_high_last"),
            # The expiry sweep.
            models.Index(fields=["last_crossed_at"], name="idx_crossings_last"),
        ]

    def __str__(self) -> str:
        return f"crossing {self.user_low_id} x {self.user_high_id} ({self.times})"

    def other_user_id(self, user_id):
        return self.user_high_id if str(self.user_low_id) == str(user_id) else self.user_low_id


class DetectorState(models.Model):
    """A detection shard's watermark: its pings whose ``ingest_xid`` is below ``xid_watermark`` are done.

    One row per shard (id = shard + 1; with one shard, the single row id 1), locked ``FOR
    UPDATE`` by the run that claims the shard's next batch, so two detectors never process the
    same batch at once and a crash rolls the claim back.  ``shards`` is the CROSSING_SHARDS the
    row was made for: when the setting changes, every row is remade from the lowest watermark.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    shards = models.PositiveSmallIntegerField(default=1, help_text="CROSSING_SHARDS this watermark belongs to.")
    xid_watermark = models.BigIntegerField(default=0)
    received_after = models.DateTimeField(null=True, blank=True,
                                          help_text="Lower bound of received_at of pings not yet processed.")
    updated_at = models.DateTimeField(auto_now=True)
    last_batch_pings = models.IntegerField(default=0)
    last_batch_matches = models.BigIntegerField(default=0)
    last_batch_seconds = models.FloatField(default=0.0)

    class Meta:
        db_table = "crossings_detector_state"

    def __str__(self) -> str:
        return f"detector shard {self.id - 1}/{self.shards} watermark {self.xid_watermark}"


class CityArea(models.Model):
    """A circle a city had before an edit moved or resized it, kept while pings assigned by it
    may still be stored: sharded detection must not skip the city's partition near them
    (docs/subsystems/detection.md, "Shards").  Written by a ``pre_save`` receiver of City."""

    city_id = models.IntegerField()
    lat = models.FloatField()
    lng = models.FloatField()
    radius_km = models.FloatField()
    kept_until = models.DateTimeField()

    class Meta:
        db_table = "crossings_city_area"

    def __str__(self) -> str:
        return f"former area of city {self.city_id} until {self.kept_until:%Y-%m-%d %H:%M}"
